"""The `relay` command line: tokens, sources, and the parts that need RELAY_REDIS_URL."""

from __future__ import annotations

import os
import pty
import select
import socket
import subprocess
import sys
import time
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from relay.cli.embedded_redis import free_port, lock_data_dir
from relay.cli.main import cmd_worker, main, parse_args
from relay.settings import Settings
from relay.store import keys, sources, tokens
from relay.store.client import Redis
from relay.store.tokens import Role


def _run(
    argv: list[str], settings: Settings, capsys: pytest.CaptureFixture[str]
) -> tuple[int, str, str]:
    code = main(argv, settings=settings)
    out, err = capsys.readouterr()
    return code, out, err


def test_console_script_is_relay_cli_main() -> None:
    """`pip install` puts a `relay` command on PATH that runs relay.cli.main:main."""
    (script,) = entry_points(group="console_scripts", name="relay")
    assert script.value == "relay.cli.main:main"


def test_token_create_prints_a_working_secret(
    settings: Settings, redis_client: Redis, capsys: pytest.CaptureFixture[str]
) -> None:
    """`relay token create` prints only the secret on stdout; it is stored hashed with its role."""
    # when
    code, out, err = _run(["token", "create", "--role", "writer", "--name", "ci"], settings, capsys)
    # then
    assert code == 0
    secret = out.strip()
    found = tokens.find_token(redis_client, secret=secret)
    assert found is not None
    assert (found.role, found.name) == (Role.WRITER, "ci")
    assert found.id in err
    assert secret not in str(redis_client.hgetall(keys.token(found.id)))


def test_token_list_shows_no_secret(
    settings: Settings, redis_client: Redis, capsys: pytest.CaptureFixture[str]
) -> None:
    """`relay token list` shows id, role and name of each token, never a secret."""
    # given
    info, secret = tokens.create_token(redis_client, name="dash", role=Role.READER)
    # when
    code, out, _ = _run(["token", "list"], settings, capsys)
    # then
    assert code == 0
    header, row = out.splitlines()
    assert header.split() == ["ID", "ROLE", "NAME", "CREATED"]
    assert row.split()[:3] == [info.id, "reader", "dash"]
    assert secret not in out


def test_token_revoke(
    settings: Settings, redis_client: Redis, capsys: pytest.CaptureFixture[str]
) -> None:
    """`relay token revoke ID` removes the token at once; an unknown id exits 1."""
    # given
    info, secret = tokens.create_token(redis_client, name="old", role=Role.ADMIN)
    # when
    code, _, _ = _run(["token", "revoke", info.id], settings, capsys)
    again, _, err = _run(["token", "revoke", info.id], settings, capsys)
    # then
    assert code == 0
    assert tokens.find_token(redis_client, secret=secret) is None
    assert again == 1 and f"no token {info.id}" in err


def test_token_create_finds_the_redis_of_a_running_up(
    settings: Settings,
    redis_url: str,
    redis_client: Redis,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Without RELAY_REDIS_URL, token commands use the Redis `relay up` notes in its data dir."""
    # given: the file `relay up` writes while it runs, and the data dir's lock it holds
    (tmp_path / "redis.url").write_text(redis_url + "\n")
    local = settings.model_copy(update={"redis_url": None})
    lock = lock_data_dir(tmp_path)
    # when
    try:
        code, out, _ = _run(
            ["token", "create", "--role", "ingest", "--data-dir", str(tmp_path)], local, capsys
        )
    finally:
        os.close(lock)
    # then
    assert code == 0
    assert tokens.find_token(redis_client, secret=out.strip()) is not None


def test_a_redis_url_left_by_a_dead_relay_up_is_not_trusted(
    settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """redis.url with nothing holding the data dir's lock (a killed `relay up`): exit 2, no
    connection, so whoever listens on that port now never sees the password or a token."""
    # given: a listener on the port the dead Redis had
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    (tmp_path / "redis.url").write_text(f"redis://:pw@127.0.0.1:{port}/0\n")
    local = settings.model_copy(update={"redis_url": None})
    # when
    code, _, err = _run(["token", "list", "--data-dir", str(tmp_path)], local, capsys)
    # then
    listener.settimeout(0.2)
    with pytest.raises(TimeoutError):
        listener.accept()
    listener.close()
    assert code == 2
    assert "no `relay up` is running" in err


def test_token_commands_without_any_redis_exit_2(
    settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No RELAY_REDIS_URL and no running `relay up`: a clear message and exit code 2."""
    local = settings.model_copy(update={"redis_url": None, "data_dir": tmp_path})
    code, _, err = _run(["token", "list"], local, capsys)
    assert code == 2
    assert "RELAY_REDIS_URL is not set" in err


def test_unreachable_redis_exits_1_with_a_message(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    """A Redis that does not answer is reported in one line, no traceback."""
    down = settings.model_copy(update={"redis_url": f"redis://127.0.0.1:{free_port()}/0"})
    code, _, err = _run(["token", "list"], down, capsys)
    assert code == 1
    assert "Redis is unreachable" in err and "Traceback" not in err


def test_sources_add_list_remove(
    settings: Settings,
    redis_client: Redis,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Sources added from the CLI (token from RELAY_SOURCE_TOKEN) are stored, listed with a
    masked token and their last pull, and removed."""
    # given
    monkeypatch.setenv("RELAY_SOURCE_TOKEN", "*:*.abcdef123456")
    # when
    added, _, _ = _run(
        ["sources", "add", "prod", "--url", "https://unleash.example.com/"], settings, capsys
    )
    sources.record_pull(redis_client, name="prod", at_ms=0, error="prod: answered 401")
    listed, out, _ = _run(["sources", "list"], settings, capsys)
    # then
    assert added == listed == 0
    stored = sources.list_sources(redis_client)
    assert [(s.name, s.url, s.token) for s in stored] == [
        ("prod", "https://unleash.example.com", "*:*.abcdef123456")
    ]
    assert "prod" in out and "https://unleash.example.com" in out
    assert "abcdef123456" not in out
    assert "LAST PULL" in out and "failed 1970-01-01T00:00:00+00:00: prod: answered 401" in out
    # when
    removed, _, _ = _run(["sources", "remove", "prod"], settings, capsys)
    again, _, err = _run(["sources", "remove", "prod"], settings, capsys)
    # then
    assert removed == 0 and sources.list_sources(redis_client) == []
    assert again == 1 and "no source prod" in err


def test_a_pull_error_quoting_the_server_cannot_drive_the_terminal(
    settings: Settings,
    redis_client: Redis,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`relay sources list` shows a failed pull's error, which may quote the Unleash server's
    answer: its escape sequences and line breaks are shown escaped, on one line."""
    monkeypatch.setenv("RELAY_SOURCE_TOKEN", "*:*.abcdef123456")
    _run(["sources", "add", "prod", "--url", "https://unleash.example.com/"], settings, capsys)
    answer = "prod: answered 500: \x1b[2J\nNAME  URL  forged"
    sources.record_pull(redis_client, name="prod", at_ms=0, error=answer)
    listed, out, _ = _run(["sources", "list"], settings, capsys)
    assert listed == 0
    assert "\x1b" not in out and "\\x1b[2J\\nNAME" in out
    assert len(out.strip().splitlines()) == 2  # the header and one source


def test_sources_add_reads_the_variable_token_env_names(
    settings: Settings,
    redis_client: Redis,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`--token-env NAME` takes the token from another variable."""
    monkeypatch.setenv("PROD_UNLEASH_TOKEN", "*:*.from-my-var")
    code, _, _ = _run(
        [
            "sources",
            "add",
            "prod",
            "--url",
            "https://u.example.com",
            "--token-env",
            "PROD_UNLEASH_TOKEN",
        ],
        settings,
        capsys,
    )
    assert code == 0
    assert [s.token for s in sources.list_sources(redis_client)] == ["*:*.from-my-var"]


def test_sources_add_refuses_a_token_in_argv(
    settings: Settings, redis_client: Redis, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--token T` (visible to every local user in ps) is refused with the way to do it now."""
    code, _, err = _run(
        ["sources", "add", "prod", "--url", "https://u.example.com", "--token", "*:*.secret"],
        settings,
        capsys,
    )
    assert code == 2
    assert "--token was removed" in err and "RELAY_SOURCE_TOKEN" in err
    assert "*:*.secret" not in err
    assert sources.list_sources(redis_client) == []


def test_sources_add_without_a_token_off_a_terminal_exits_2(
    settings: Settings,
    redis_client: Redis,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No variable and no terminal to ask on: a usage error naming the variable."""
    monkeypatch.delenv("RELAY_SOURCE_TOKEN", raising=False)
    code, _, err = _run(
        ["sources", "add", "prod", "--url", "https://u.example.com"], settings, capsys
    )
    assert code == 2
    assert "no token: set RELAY_SOURCE_TOKEN" in err
    assert sources.list_sources(redis_client) == []


def test_sources_add_asks_for_the_token_on_a_terminal(
    settings: Settings, redis_client: Redis, tmp_path: Path
) -> None:
    """On a terminal, the token is typed at a prompt (not echoed), never in argv."""
    # given: the CLI in a child process whose stdin is a pseudo-terminal
    controller, terminal = pty.openpty()
    env = {k: v for k, v in os.environ.items() if k != "RELAY_SOURCE_TOKEN"}
    env["RELAY_REDIS_URL"] = settings.require_redis_url()
    env["RELAY_ALLOW_PRIVATE_DESTINATIONS"] = "true"
    argv = [
        sys.executable,
        "-m",
        "relay.cli",
        "sources",
        "add",
        "prod",
        "--url",
        "https://u.example.com",
    ]
    # a session of its own: no controlling terminal, so getpass uses stdin, the pty
    child = subprocess.Popen(
        argv,
        stdin=terminal,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=tmp_path,
        env=env,
        start_new_session=True,
    )
    os.close(terminal)
    try:
        # when: typed once the prompt shows (getpass flushes what was typed before)
        prompt = _read_until(child, b"Unleash admin token for prod: ", timeout=60)
        os.write(controller, b"*:*.typed-token\n")
        out, err = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate()
        os.close(controller)
    # then
    assert child.returncode == 0, prompt + err
    assert b"typed-token" not in out + err
    assert [s.token for s in sources.list_sources(redis_client)] == ["*:*.typed-token"]


def _read_until(child: subprocess.Popen[bytes], wanted: bytes, *, timeout: float) -> bytes:
    """What the child wrote to stderr up to and including `wanted`."""
    assert child.stderr is not None
    seen = b""
    deadline = time.monotonic() + timeout
    while wanted not in seen:
        ready, _, _ = select.select([child.stderr], [], [], deadline - time.monotonic())
        chunk = os.read(child.stderr.fileno(), 1024) if ready else b""
        assert chunk, f"no prompt; the child wrote {seen!r}"
        seen += chunk
    return seen


def test_sources_add_with_a_bad_url_exits_2_naming_the_field(
    settings: Settings,
    redis_client: Redis,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A source URL that is not http(s) is refused with the reason; nothing is stored."""
    monkeypatch.setenv("RELAY_SOURCE_TOKEN", "t")
    code, _, err = _run(["sources", "add", "prod", "--url", "ftp://x"], settings, capsys)
    assert code == 2
    assert "url: must be an http(s) URL" in err
    assert sources.list_sources(redis_client) == []


def test_sources_add_of_a_loopback_url_exits_2_under_the_default_guard(
    settings: Settings,
    redis_client: Redis,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The destination guard refuses 127.0.0.1 (an Unleash token must not go there)."""
    monkeypatch.setenv("RELAY_SOURCE_TOKEN", "t")
    strict = settings.model_copy(update={"allow_private_destinations": False})
    code, _, err = _run(
        ["sources", "add", "prod", "--url", "http://127.0.0.1:4242"], strict, capsys
    )
    assert code == 2
    assert "refused by the destination guard" in err
    assert "url: 127.0.0.1 is a loopback address" in err
    assert sources.list_sources(redis_client) == []


@pytest.mark.parametrize("command", [["serve"], ["worker"], ["beat"]], ids=lambda c: c[0])
def test_parts_refuse_to_run_without_redis_url(
    command: list[str], settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    """`relay serve/worker/beat` need RELAY_REDIS_URL: a clear error and exit code 2."""
    code, _, err = _run(command, settings.model_copy(update={"redis_url": None}), capsys)
    assert code == 2
    assert f"RELAY_REDIS_URL is not set: `relay {command[0]}`" in err


def test_serve_without_redis_url_from_the_environment(tmp_path: Path) -> None:
    """The installed command reads the environment: no RELAY_REDIS_URL there, exit code 2."""
    env = {k: v for k, v in os.environ.items() if k != "RELAY_REDIS_URL"}
    result = _run_installed(["serve"], env, tmp_path)
    assert result.returncode == 2
    assert "RELAY_REDIS_URL is not set" in result.stderr
    assert "Traceback" not in result.stderr


def _run_installed(
    argv: list[str], env: dict[str, str], cwd: Path
) -> subprocess.CompletedProcess[str]:
    """`relay <argv>` as the installed command runs it, in a process of its own."""
    return subprocess.run(
        [sys.executable, "-m", "relay.cli", *argv],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_worker_passes_unknown_arguments_to_celery() -> None:
    """`relay worker --concurrency 4 -Q q` hands the extra arguments to the celery worker."""
    args = parse_args(["worker", "--concurrency", "4", "-Q", "q"])
    assert args.handler is cmd_worker
    assert args.celery_args == ["--concurrency", "4", "-Q", "q"]


def test_worker_exits_with_celerys_code(settings: Settings, tmp_path: Path) -> None:
    """A worker Celery refuses to run exits non-zero with Celery's message, not a trace
    (Celery's own app.start dropped the code: `relay worker` exited 0 on any failure)."""
    env = {**os.environ, "RELAY_REDIS_URL": settings.require_redis_url()}
    result = _run_installed(["worker", "--pool=no-such-pool"], env, tmp_path)
    assert result.returncode == 2
    assert "Invalid value for '-P' / '--pool'" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "argv",
    [["serve", "--bogus"], ["token", "create", "--role", "root"], ["token"], []],
    ids=["unknown option", "unknown role", "no action", "no command"],
)
def test_bad_usage_exits_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """Anything else the parser does not know is a usage error (exit code 2)."""
    with pytest.raises(SystemExit) as exited:
        parse_args(argv)
    assert exited.value.code == 2
    assert "usage: relay" in capsys.readouterr().err
