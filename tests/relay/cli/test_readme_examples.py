"""The README's API examples, run as written against a real `relay up` from a fresh data
directory.

Every `curl` of README.md's `## APIs` section runs with bash in a fresh folder (its `.venv`
links to this suite's environment, as in test_quick_start.py), after the section's own
`RELAY=...` and `ADMIN=...` lines, in the README's order. Only what a reader has to fill in
is filled in: `$INGEST_TOKEN` (a token made by running the README's token example once
before the others), each `<...>` placeholder (the `_id` an earlier example returned), and
the port when something else holds 8080. Each curl gets `-sS -o FILE -w '%{http_code}'`
(and nothing else) to read its status, which must be 2xx. The token, sources and status
commands of the `## CLI` table run against the same relay. Needs curl.
"""

from __future__ import annotations

import contextlib
import json
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
import pytest

from relay.cli.embedded_redis import free_port
from tests.relay.cli.up_process import Process, readme_ports, require_curl, up_environment
from tests.support import README, eventually, readme_block

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

# which earlier example's answer (its `_id`) fills each placeholder, by how that example begins
PLACEHOLDER_SOURCES = {
    "<_id>": "curl -X POST $RELAY/api/v2/tokens ",
    "<subscription id>": "curl -X POST $RELAY/api/v2/integrations/webhook ",
}
# examples the README documents to answer otherwise for a while (/readyz: 503 until a worker
# has beaten), retried until 2xx
WAITED_FOR = ("/readyz",)
WAIT_LIMIT = 60.0
README_PORT = 8080  # as the README's `RELAY=` line has it


@dataclass(frozen=True)
class Example:
    """One command of a README code block, under its `###` heading."""

    heading: str
    command: str

    @property
    def name(self) -> str:
        """`Tokens: DELETE /api/v2/tokens/<_id>`: a readable test id."""
        method = re.search(r" -X (\w+)", self.command)
        url = next(word for word in shlex.split(self.command) if word.startswith("$RELAY"))
        return f"{self.heading}: {method[1] if method else 'GET'} {url.removeprefix('$RELAY')}"


@dataclass(frozen=True)
class Answer:
    """What an example got: its HTTP status (0 when curl or a placeholder failed), body,
    and curl's stderr or the reason it did not run."""

    status: int
    body: str
    problem: str = ""


def section(title: str) -> str:
    """The README's `## title` section, subsections included."""
    match = re.search(rf"^## {title}\n(.*?)(?=^## )", README.read_text(), re.M | re.S)
    assert match, f"README has no '## {title}' section"
    return match.group(1)


def commands(block: str) -> list[str]:
    """A code block's commands: backslash continuations joined (as bash joins them), a
    command going on while a quote is open, comment-only lines left out."""
    found, pending = [], ""
    for line in block.replace("\\\n", "").splitlines():
        if not pending and line.lstrip().startswith("#"):
            continue
        pending = f"{pending}\n{line}" if pending else line
        try:
            shlex.split(pending, comments=True)
        except ValueError:  # a quote still open: the command goes on on the next line
            continue
        found.append(pending)
        pending = ""
    assert not pending, f"unclosed quote in {pending!r}"
    return found


def api_examples() -> tuple[str, list[Example]]:
    """The `## APIs` section's opening block (`RELAY=...`, `ADMIN=...`) and the curl commands
    of its subsections in order; any other command fails here rather than being skipped."""
    opening, *subsections = re.split(r"^### (.+)\n", section("APIs"), flags=re.M)
    (setup,) = bash_blocks(opening)
    assert setup.startswith(f"RELAY=http://127.0.0.1:{README_PORT}\n"), setup
    examples = []
    for heading, text in zip(subsections[::2], subsections[1::2], strict=True):
        for block in bash_blocks(text):
            for command in commands(block):
                assert command.startswith("curl "), f"not a curl example: {command!r}"
                examples.append(Example(heading, command))
    assert examples
    return setup, examples


def bash_blocks(text: str) -> list[str]:
    return re.findall(r"^```bash\n(.*?)\n```", text, re.M | re.S)


SETUP, EXAMPLES = api_examples()


@dataclass
class Folder:
    """The fresh folder where `relay up` runs, and the README's `RELAY=`/`ADMIN=` lines for
    the port it listens on."""

    path: Path
    setup: str

    def run(
        self, script: str, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """`script` run by bash in the folder, after the setup lines."""
        return subprocess.run(
            ["bash", "-c", f"{self.setup}\n{script}"],
            cwd=self.path,
            env={**up_environment(), **(env or {})},
            capture_output=True,
            text=True,
            timeout=60,
        )

    @property
    def url(self) -> str:
        return self.setup.split("\n", 1)[0].removeprefix("RELAY=")


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Folder]:
    """`relay up` (the quick start's command) running in a fresh folder, on 8080 as the README
    has it, or on a free port if 8080 is taken."""
    require_curl("running the README's API examples")
    up_command = readme_block("quick-start: up").split(" && ")[-1]
    with readme_ports():
        yield from _folder_with_relay_up(tmp_path_factory, up_command)


def _folder_with_relay_up(
    tmp_path_factory: pytest.TempPathFactory, up_command: str
) -> Iterator[Folder]:
    for port in (README_PORT, free_port()):  # a free one when something else holds 8080
        path = tmp_path_factory.mktemp("readme")
        (path / ".venv").symlink_to(Path(sys.prefix), target_is_directory=True)
        command = up_command if port == README_PORT else f"{up_command} --port {port}"
        up = _up(command, path, port)
        if up is not None:
            break
    else:
        pytest.fail("relay up did not start on a free port either")
    try:
        yield Folder(path, SETUP.replace(f"127.0.0.1:{README_PORT}", f"127.0.0.1:{port}"))
    finally:
        up.stop()


def _up(command: str, path: Path, port: int) -> Process | None:
    """`command` started and up (its banner printed, its API on `port`), or None when the port
    is someone else's."""
    up = Process(command, path)
    eventually(
        lambda: up.printed("relay is up") or up.popen.poll() is not None,
        60,
        what="relay up's banner",
    )
    if up.popen.poll() is not None:
        assert up.printed("cannot listen on"), "\n".join(up.lines[-30:])
        return None
    # another relay (another test's) may bind the port between relay up's check and its API's
    # bind, and then answer the /healthz that prints this one's banner
    if not _listens(up, port):
        up.stop()
        return None
    return up


def _listens(up: Process, port: int) -> bool:
    """Whether a process of this `relay up` listens on `port`."""
    for child in psutil.Process(up.popen.pid).children(recursive=True):
        with contextlib.suppress(psutil.Error):
            for conn in child.net_connections("tcp"):
                if conn.status == psutil.CONN_LISTEN and conn.laddr.port == port:
                    return True
    return False


@pytest.fixture(scope="module")
def answers(folder: Folder, tmp_path_factory: pytest.TempPathFactory) -> dict[Example, Answer]:
    """Every API example run once, in the README's order, with what it answered."""
    out = tmp_path_factory.mktemp("answers") / "body"
    (token_example,) = [e for e in EXAMPLES if e.command.startswith(PLACEHOLDER_SOURCES["<_id>"])]
    made = _run(folder, token_example.command, out, env={})
    ingest_token = json.loads(made.body)["token"] if _ok(made) else ""
    env = {"INGEST_TOKEN": ingest_token}

    got: dict[Example, Answer] = {}
    for example in EXAMPLES:
        try:
            command = _filled(example.command, got)
        except LookupError as exc:
            got[example] = Answer(0, "", f"no value for {exc}")
            continue
        waited = any(path in command for path in WAITED_FOR)
        got[example] = (_run_until_2xx if waited else _run)(folder, command, out, env)
    return got


def _filled(command: str, got: dict[Example, Answer]) -> str:
    """`command` with each placeholder replaced by the `_id` its source example answered."""
    for placeholder, source in PLACEHOLDER_SOURCES.items():
        if placeholder in command:
            answered = [a for e, a in got.items() if e.command.startswith(source) and _ok(a)]
            if not answered:
                raise LookupError(placeholder)
            command = command.replace(placeholder, json.loads(answered[-1].body)["_id"])
    assert not re.search(r"<[\w ]+>", command), f"a placeholder is left in {command!r}"
    return command


def _run(folder: Folder, command: str, out: Path, env: dict[str, str]) -> Answer:
    """`command` (a curl) with only `-sS -o out -w '%{http_code}'` added, and its answer."""
    out.unlink(missing_ok=True)
    measured = f"curl -sS -o {shlex.quote(str(out))} -w '%{{http_code}}' {command[len('curl ') :]}"
    done = folder.run(measured, env)
    status = int(done.stdout) if done.stdout.isdigit() else 0
    body = out.read_text() if out.exists() else ""
    return Answer(status, body, done.stderr.strip())


def _run_until_2xx(folder: Folder, command: str, out: Path, env: dict[str, str]) -> Answer:
    """`_run` every 0.5 s until it answers 2xx, for at most WAIT_LIMIT s; its last answer."""
    tries: list[Answer] = []

    def succeeded() -> bool:
        tries.append(_run(folder, command, out, env))
        return _ok(tries[-1])

    with contextlib.suppress(AssertionError):
        eventually(succeeded, WAIT_LIMIT, interval=0.5)
    return tries[-1]


def _ok(answer: Answer) -> bool:
    return 200 <= answer.status < 300


@pytest.mark.parametrize("example", EXAMPLES, ids=[e.name for e in EXAMPLES])
def test_readme_api_example_succeeds(example: Example, answers: dict[Example, Answer]) -> None:
    """The example, run as the README writes it (after the ones above it), answers 2xx."""
    answer = answers[example]
    assert _ok(answer), (example.command, answer)


def test_readme_cli_token_sources_and_status_commands(folder: Folder) -> None:
    """`relay token create --role reader`, `token list`, `token revoke ID`, `sources list`,
    `status` and `status --json` work in the folder against the running relay."""
    cli = section("CLI")
    for documented in ("relay token list", "relay token revoke ID", "relay sources list"):
        assert f"`{documented}`" in cli, documented
    assert "`relay token create --role admin\\|writer\\|reader\\|ingest" in cli
    assert "`relay status [--json]`" in cli
    flag_events = (
        f"{folder.url}/api/v2/engineering-insights/flag-events"
        "?projectKey=default&environmentKey=production"
    )

    # given a reader token made by the CLI
    created = folder.run(".venv/bin/relay token create --role reader")
    assert created.returncode == 0, created
    secret = created.stdout.strip()
    token_id = re.search(r"created reader token (\S+)", created.stderr)
    assert token_id, created.stderr
    assert httpx.get(flag_events, headers={"Authorization": secret}).status_code == 200

    # when it is listed and revoked
    listed = folder.run(".venv/bin/relay token list")
    revoked = folder.run(f".venv/bin/relay token revoke {token_id[1]}")

    # then the list showed it, and it no longer reads
    assert listed.returncode == 0 and token_id[1] in listed.stdout, listed
    assert revoked.returncode == 0, revoked
    assert httpx.get(flag_events, headers={"Authorization": secret}).status_code == 401
    for command in ("sources list", "status", "status --json"):
        done = folder.run(f".venv/bin/relay {command}")
        assert done.returncode == 0, done
    assert "subscriptions" in json.loads(done.stdout)
