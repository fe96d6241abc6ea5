"""`relay up` as a real subprocess: it starts, answers, heals, and stops without leftovers."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from relay.embedded import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

STARTUP_LIMIT = 30.0  # the promise: /healthz answers within 30 s


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

    def descendants(self) -> list[psutil.Process]:
        return psutil.Process(self.process.pid).children(recursive=True)


def _subcommand(role: str) -> str:
    return {"api": "serve", "worker": "worker", "beat": "beat"}[role]


def _pump(stream: Any, sink: list[str]) -> None:
    for line in stream:
        sink.append(line.rstrip("\n"))


def _wait_for(condition: Callable[[], bool], timeout: float, what: str) -> float:
    """Poll `condition` until true; the seconds it took."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        try:
            if condition():
                return time.monotonic() - start
        except (httpx.HTTPError, LookupError, psutil.Error):
            pass
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def _up_command(port: int, data_dir: Path) -> list[str]:
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


def _start(tmp: Path) -> RelayUp:
    env = {k: v for k, v in os.environ.items() if k not in {"RELAY_REDIS_URL", "RELAY_ADMIN_TOKEN"}}
    port = free_port()
    data_dir = tmp / "data"
    process = subprocess.Popen(
        _up_command(port, data_dir),
        cwd=tmp,
        env=env,
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


def _ready(up: RelayUp) -> bool:
    return httpx.get(f"{up.url}/readyz", timeout=2).status_code == 200


def _healthy(up: RelayUp) -> bool:
    return httpx.get(f"{up.url}/healthz", timeout=2).status_code == 200


def _stop(up: RelayUp) -> None:
    """Cleanup: stop it, and kill whatever a failed test may have left running."""
    if up.process.poll() is not None:
        return
    left = up.descendants()
    up.process.send_signal(signal.SIGINT)
    try:
        up.process.wait(15)
    except subprocess.TimeoutExpired:
        up.process.kill()
        up.process.wait()
    for proc in left:
        if _alive(proc):
            proc.kill()


@pytest.fixture(scope="module")
def relay_up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RelayUp]:
    """One `relay up` shared by the tests that only look at a running relay."""
    up = _start(tmp_path_factory.mktemp("up"))
    try:
        up.healthy_after = _wait_for(lambda: _healthy(up), 60, "/healthz")
        yield up
    finally:
        _stop(up)


def test_up_answers_healthz_and_prints_url_and_token(relay_up: RelayUp) -> None:
    """/healthz answers within 30 s; the banner shows the URL and the kept admin token."""
    _wait_for(lambda: "Press Ctrl-C to stop." in relay_up.stdout, 10, "the banner")
    assert relay_up.healthy_after is not None and relay_up.healthy_after < STARTUP_LIMIT
    token_file = relay_up.data_dir / "admin-token"
    token = token_file.read_text().strip()
    banner = "\n".join(relay_up.stdout)
    assert relay_up.url in banner
    assert token in banner and str(token_file) in banner
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    answer = httpx.get(f"{relay_up.url}/api/v2/tokens", headers={"Authorization": token})
    assert answer.status_code == 200


def test_up_becomes_ready_once_the_worker_beats(relay_up: RelayUp) -> None:
    """/readyz turns 200 once the supervised Celery worker sends its heartbeat."""
    _wait_for(lambda: _ready(relay_up), STARTUP_LIMIT, "/readyz")
    body = httpx.get(f"{relay_up.url}/readyz").json()
    assert body["status"] == "ready" and body["redis"] is True
    assert body["workers"]


def test_up_restarts_a_killed_worker_and_logs_it(relay_up: RelayUp) -> None:
    """A SIGKILLed worker is replaced by a new worker process, and the restart is logged."""
    # given
    _wait_for(lambda: _ready(relay_up), STARTUP_LIMIT, "/readyz")
    old = relay_up.child("worker")
    # when
    old.send_signal(signal.SIGKILL)
    # then
    _wait_for(lambda: relay_up.child("worker").pid != old.pid, 30, "a new worker process")
    exits = [
        r
        for r in relay_up.records()
        if r.get("child") == "worker" and r.get("exit_code") == -signal.SIGKILL
    ]
    assert exits and "restarting" in exits[0]["message"]
    assert exits[0]["pid"] == old.pid
    _wait_for(lambda: _ready(relay_up), STARTUP_LIMIT, "/readyz after the restart")


def test_up_restarts_embedded_redis_from_its_aof(relay_up: RelayUp) -> None:
    """A SIGKILLed embedded Redis comes back on the same port with what it had acknowledged."""
    # given: a token stored more than a second ago (AOF fsync every second)
    admin = {"Authorization": (relay_up.data_dir / "admin-token").read_text().strip()}
    created = httpx.post(
        f"{relay_up.url}/api/v2/tokens", json={"name": "kept", "role": "admin"}, headers=admin
    ).json()
    time.sleep(1.5)
    old = relay_up.child("redis")
    # when
    old.send_signal(signal.SIGKILL)
    _wait_for(lambda: relay_up.child("redis").pid != old.pid, 30, "a new redis-server")
    # then
    mine = {"Authorization": created["token"]}
    _wait_for(
        lambda: httpx.get(f"{relay_up.url}/api/v2/tokens", headers=mine).status_code == 200,
        30,
        "the token to authenticate again",
    )
    assert any(
        r.get("child") == "redis" and "restarting" in r["message"] for r in relay_up.records()
    )


def test_second_up_on_the_same_data_dir_is_refused(relay_up: RelayUp, tmp_path: Path) -> None:
    """Two `relay up` on one data directory would share one AOF: the second exits with 2."""
    result = subprocess.run(
        _up_command(free_port(), relay_up.data_dir),
        cwd=tmp_path,
        env={k: v for k, v in os.environ.items() if k != "RELAY_REDIS_URL"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "another `relay up` is using" in result.stderr


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_stop_signal_ends_everything_within_10s(signum: int, tmp_path: Path) -> None:
    """SIGINT or SIGTERM stops `relay up` within 10 s and leaves no process behind."""
    # given: everything running, the worker ready
    up = _start(tmp_path)
    try:
        _wait_for(lambda: _ready(up), STARTUP_LIMIT, "/readyz")
        seen = up.descendants()
        assert {"redis", "api", "worker", "beat"} <= _roles(up)
        # when
        started = time.monotonic()
        up.process.send_signal(signum)
        code = up.process.wait(15)
        took = time.monotonic() - started
        # then
        assert code == 0
        assert took <= 10.0, f"stopping took {took:.1f}s"
        left = [proc for proc in seen if _alive(proc)]
        assert left == [], f"still running: {[p.cmdline() for p in left]}"
        assert not (up.data_dir / "redis.url").exists()
    finally:
        _stop(up)


def _roles(up: RelayUp) -> set[str]:
    roles = set()
    for role in ("redis", "api", "worker", "beat"):
        try:
            up.child(role)
            roles.add(role)
        except LookupError:
            pass
    return roles


def _alive(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
