"""`relay up` as a real subprocess, for the tests that start one (test_cli_up, test_up_crash),
and `Process`, a command run by bash in a folder (test_quick_start, test_readme_examples)."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from relay.cli.embedded_redis import free_port
from tests.support import eventually

STARTUP_LIMIT = 30.0  # the promise: /healthz answers within 30 s
ROLES = ("redis", "api", "worker", "beat")


@dataclass
class RelayUp:
    """A running `relay up` and everything it printed so far."""

    process: subprocess.Popen[str]
    url: str
    data_dir: Path
    healthy_after: float | None = None
    stdout: list[str] = field(default_factory=list)
    stderr: list[str] = field(default_factory=list)

    def records(self) -> list[dict[str, Any]]:
        """The JSON log lines (stderr is not a terminal here, so logs are JSON)."""
        parsed = []
        for line in list(self.stderr):
            if line.startswith("{"):
                parsed.append(json.loads(line))
        return parsed

    def child(self, role: str) -> psutil.Process:
        """The supervised child playing `role` (api, worker, beat, redis) right now."""
        for proc in psutil.Process(self.process.pid).children():
            cmdline = proc.cmdline()
            if role == "redis" and cmdline and "redis-server" in cmdline[0]:
                return proc
            if role != "redis" and cmdline[2:4] == ["relay.cli", _subcommand(role)]:
                return proc
        raise LookupError(role)

    def roles(self) -> set[str]:
        """The roles that have a process right now."""
        found = set()
        for role in ROLES:
            try:
                self.child(role)
                found.add(role)
            except LookupError:
                pass
        return found

    def descendants(self) -> list[psutil.Process]:
        return psutil.Process(self.process.pid).children(recursive=True)


def _subcommand(role: str) -> str:
    return {"api": "serve", "worker": "worker", "beat": "beat"}[role]


def _pump(stream: Any, sink: list[str]) -> None:
    for line in stream:
        sink.append(line.rstrip("\n"))


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> float:
    """Poll `condition` until true (a failed request or process lookup: not yet); the seconds
    it took."""
    start = time.monotonic()
    errors = (httpx.HTTPError, LookupError, psutil.Error)
    eventually(condition, timeout, interval=0.1, ignoring=errors, what=what)
    return time.monotonic() - start


def up_command(port: int, data_dir: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "relay.cli",
        "up",
        "--port",
        str(port),
        "--data-dir",
        str(data_dir),
    ]


def up_environment() -> dict[str, str]:
    """This environment without what would make `relay up` use another Redis or token."""
    return {
        k: v for k, v in os.environ.items() if k not in {"RELAY_REDIS_URL", "RELAY_ADMIN_TOKEN"}
    }


def start(tmp: Path, env: dict[str, str] | None = None) -> RelayUp:
    """`relay up` with its data in `tmp/data`, on a free port, output collected; `env` adds
    to (or replaces) the environment's variables."""
    port = free_port()
    data_dir = tmp / "data"
    process = subprocess.Popen(
        up_command(port, data_dir),
        cwd=tmp,
        env={**up_environment(), **(env or {})},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    up = RelayUp(process, f"http://127.0.0.1:{port}", data_dir)
    # drain both pipes, or the children block once a pipe buffer fills
    for stream, sink in ((process.stdout, up.stdout), (process.stderr, up.stderr)):
        threading.Thread(target=_pump, args=(stream, sink), daemon=True).start()
    return up


def ready(up: RelayUp) -> bool:
    return httpx.get(f"{up.url}/readyz", timeout=2).status_code == 200


def healthy(up: RelayUp) -> bool:
    return httpx.get(f"{up.url}/healthz", timeout=2).status_code == 200


def stop(up: RelayUp, left: list[psutil.Process] | None = None) -> None:
    """Cleanup: stop it, and kill whatever a failed test may have left running."""
    left = list(left or [])
    if up.process.poll() is None:
        left += up.descendants()
        up.process.send_signal(signal.SIGINT)
        try:
            up.process.wait(15)
        except subprocess.TimeoutExpired:
            up.process.kill()
            up.process.wait()
    for proc in left:
        if alive(proc):
            proc.kill()


class Process:
    """A command run by bash in `cwd` (e.g. `relay up` in the quick start's folder), its stdout
    collected line by line."""

    def __init__(self, command: str, cwd: Path) -> None:
        self.lines: list[str] = []
        self.popen = subprocess.Popen(
            ["bash", "-c", f"exec {command}"],
            cwd=cwd,
            env=up_environment(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            self.lines.append(line.rstrip("\n"))

    def printed(self, text: str) -> list[str]:
        return [line for line in list(self.lines) if text in line]

    def stop(self) -> int:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGINT)
            try:
                return self.popen.wait(20)
            except subprocess.TimeoutExpired:
                self.popen.kill()
        return self.popen.wait()


def alive(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@contextmanager
def readme_ports() -> Iterator[None]:
    """Held while a test runs relay on the README's own ports (8080, 9876): the pytest-xdist
    workers take turns, so two such tests never race for them (a `relay up` whose API lost
    the race would print its banner for the other one's /healthz)."""
    with open(Path(tempfile.gettempdir()) / "relay-tests-readme-ports.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        yield


def require_curl(what: str) -> None:
    """Skip without curl, or fail in CI (`.ci/run` sets CI), where the README's commands run."""
    if shutil.which("curl"):
        return
    if os.environ.get("CI"):
        pytest.fail(f"curl is missing: {what} needs it")
    pytest.skip("curl is not installed")
