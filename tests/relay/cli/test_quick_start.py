"""The README's quick start, run as written in a fresh folder: `relay up`, `relay listen` in
a second process, the README's curl, and the delivery printed by `relay listen` with
"signature ok". Ctrl-C on `relay listen` then deletes its subscription.

The install step is this suite's own environment: the folder's `.venv` links to it. The
README's ports (8080, 9876) are used as written unless something on this machine holds
them, then free ones are put in the same commands. Needs curl (fails in CI without it).
"""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from relay.cli.embedded_redis import free_port
from tests.relay.cli.up_process import Process, readme_ports, require_curl
from tests.support import eventually, readme_block

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

API_PORT, LISTEN_PORT = 8080, 9876  # as the README's commands have them


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A fresh folder whose `.venv` is this suite's environment (the install step, done)."""
    require_curl("the quick start's event")
    (tmp_path / ".venv").symlink_to(Path(sys.prefix), target_is_directory=True)
    return tmp_path


@pytest.fixture
def commands() -> Iterator[tuple[str, str, str]]:
    """The quick start's three commands (the install step left out), on free ports."""
    up = readme_block("quick-start: up").split(" && ")[-1]
    listen = readme_block("quick-start: listen")
    event = readme_block("quick-start: event")
    assert up == ".venv/bin/relay up" and f"127.0.0.1:{API_PORT}/" in event
    with readme_ports():
        if not _free(API_PORT):
            port = free_port()
            up, event = f"{up} --port {port}", event.replace(f":{API_PORT}/", f":{port}/")
        if not _free(LISTEN_PORT):
            listen = f"{listen} --port {free_port()}"
        yield up, listen, event


def test_readme_quick_start_prints_a_signed_delivery(
    folder: Path, commands: tuple[str, str, str]
) -> None:
    up_command, listen_command, event_command = commands
    up = Process(up_command, folder)
    listen: Process | None = None
    try:
        eventually(lambda: bool(up.printed("relay is up")), 60, what="relay up's banner")
        assert (folder / ".relay" / "admin-token").exists()
        listen = Process(listen_command, folder)
        eventually(lambda: bool(listen and listen.printed("Ctrl-C")), 30, what="relay listen")
        (subscribed,) = listen.printed("subscription ")
        sub_id = subscribed.split()[1]

        posted = subprocess.run(
            ["bash", "-c", event_command], cwd=folder, capture_output=True, text=True, timeout=30
        )
        assert posted.returncode == 0 and '"ids"' in posted.stdout, posted

        printer = listen
        eventually(
            lambda: bool(printer.printed("feature-environment-enabled")),
            30,
            what="the delivery printed by relay listen",
        )
        (line,) = printer.printed("feature-environment-enabled")
        assert "flag checkout.v2" in line and "default/production" in line
        assert "attempt 1" in line and "signature ok" in line

        assert listen.stop() == 0
        assert listen.printed(f"deleted subscription {sub_id}")
        token = (folder / ".relay" / "admin-token").read_text().strip()
        api = event_command.split("http://", 1)[1].split("/", 1)[0]
        gone = httpx.get(
            f"http://{api}/api/v2/integrations/webhook/{sub_id}", headers={"Authorization": token}
        )
        assert gone.status_code == 404
    finally:
        if listen is not None:
            listen.stop()
        assert up.stop() == 0, "\n".join(up.lines[-30:])


def _free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True
