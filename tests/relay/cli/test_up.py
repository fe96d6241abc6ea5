"""`relay up` as a real subprocess: it starts, answers, heals, and stops without leftovers."""

from __future__ import annotations

import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from relay.cli.embedded_redis import free_port
from tests.relay.cli.up_process import (
    STARTUP_LIMIT,
    RelayUp,
    alive,
    healthy,
    ready,
    start,
    stop,
    up_command,
    up_environment,
    wait_for,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture(scope="module")
def relay_up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RelayUp]:
    """One `relay up` shared by the tests that only look at a running relay."""
    up = start(tmp_path_factory.mktemp("up"))
    try:
        up.healthy_after = wait_for(lambda: healthy(up), 60, "/healthz")
        yield up
    finally:
        stop(up)


def test_up_answers_healthz_and_prints_url_and_token(relay_up: RelayUp) -> None:
    """/healthz answers within 30 s; the banner shows the URL and the kept admin token."""
    wait_for(lambda: "Press Ctrl-C to stop." in relay_up.stdout, 10, "the banner")
    assert relay_up.healthy_after is not None and relay_up.healthy_after < STARTUP_LIMIT
    token_file = relay_up.data_dir / "admin-token"
    token = token_file.read_text().strip()
    banner = "\n".join(relay_up.stdout)
    assert relay_up.url in banner
    assert token in banner and str(token_file) in banner
    assert "`relay listen`" in banner  # the quick start's next step
    redis_password = redis.Redis.from_url(_redis_url(relay_up)).connection_pool.connection_kwargs
    assert redis_password["password"] not in banner
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    answer = httpx.get(f"{relay_up.url}/api/v2/tokens", headers={"Authorization": token})
    assert answer.status_code == 200


def test_up_becomes_ready_once_the_worker_beats(relay_up: RelayUp) -> None:
    """/readyz turns 200 once the supervised Celery worker sends its heartbeat."""
    wait_for(lambda: ready(relay_up), STARTUP_LIMIT, "/readyz")
    body = httpx.get(f"{relay_up.url}/readyz").json()
    assert body["status"] == "ready" and body["redis"] is True
    assert body["workers"]


def test_idle_up_is_quiet_at_info(relay_up: RelayUp) -> None:
    """Once started, an idle relay logs (almost) nothing at INFO: no beat, task or access lines."""
    # given: started and settled
    wait_for(lambda: ready(relay_up), STARTUP_LIMIT, "/readyz")
    time.sleep(2)
    before = len(relay_up.stderr)
    # when: five idle seconds (the pump runs every second), and a few requests
    for _ in range(3):
        httpx.get(f"{relay_up.url}/healthz")
    time.sleep(5)
    # then
    lines = relay_up.stderr[before:]
    assert len(lines) <= 2, "\n".join(lines)


def test_up_keeps_its_data_dir_private(relay_up: RelayUp, tmp_path: Path) -> None:
    """Nothing in the data dir is readable by others; its Redis wants redis.url's password."""
    # given
    wait_for(lambda: ready(relay_up), STARTUP_LIMIT, "/readyz")
    url = _redis_url(relay_up)
    # then: 0700 directories, 0600 files (AOF, redis.url, token, beat schedule, metrics)
    paths = [relay_up.data_dir, *relay_up.data_dir.rglob("*")]
    modes = {str(path): oct(stat.S_IMODE(path.lstat().st_mode)) for path in paths}
    assert modes == {str(path): "0o700" if path.is_dir() else "0o600" for path in paths}
    assert {"appendonly.aof", "redis.url", "admin-token"} <= {path.name for path in paths}
    # and: the port answers only with the password
    port = redis.Redis.from_url(url).connection_pool.connection_kwargs["port"]
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(host="127.0.0.1", port=port).get("relay:tokens")
    # and: the CLI in another terminal finds the Redis, password included
    relay = [sys.executable, "-m", "relay.cli"]
    listed = subprocess.run(
        [*relay, "token", "list", "--data-dir", str(relay_up.data_dir)],
        cwd=tmp_path,
        env=up_environment(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.startswith("ID")


def _redis_url(up: RelayUp) -> str:
    return (up.data_dir / "redis.url").read_text().strip()


def test_up_restarts_a_killed_worker_and_logs_it(relay_up: RelayUp) -> None:
    """A SIGKILLed worker is replaced by a new worker process, and the restart is logged."""
    # given
    wait_for(lambda: ready(relay_up), STARTUP_LIMIT, "/readyz")
    old = relay_up.child("worker")
    # when
    old.send_signal(signal.SIGKILL)
    # then
    wait_for(lambda: relay_up.child("worker").pid != old.pid, 30, "a new worker process")
    exits = [
        r
        for r in relay_up.records()
        if r.get("child") == "worker" and r.get("exit_code") == -signal.SIGKILL
    ]
    assert exits and "restarting" in exits[0]["message"]
    assert exits[0]["pid"] == old.pid
    wait_for(lambda: ready(relay_up), STARTUP_LIMIT, "/readyz after the restart")


def test_a_killed_api_is_restarted_on_the_port_relay_up_keeps(relay_up: RelayUp) -> None:
    """`relay up` holds the API's listening socket: while its API child is dead no other
    process can take the port, and the restarted child answers on it."""
    # given
    wait_for(lambda: healthy(relay_up), STARTUP_LIMIT, "/healthz")
    old = relay_up.child("api")
    port = int(relay_up.url.rsplit(":", 1)[1])
    # when
    old.send_signal(signal.SIGKILL)
    old.wait(10)
    # then: the port stays relay up's, and a new API serves it
    with socket.socket() as intruder:
        intruder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        with pytest.raises(OSError):
            intruder.bind(("127.0.0.1", port))
    wait_for(lambda: relay_up.child("api").pid != old.pid, 30, "a new API process")
    wait_for(lambda: healthy(relay_up), STARTUP_LIMIT, "/healthz from the new API")


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
    wait_for(lambda: relay_up.child("redis").pid != old.pid, 30, "a new redis-server")
    # then
    mine = {"Authorization": created["token"]}
    wait_for(
        lambda: httpx.get(f"{relay_up.url}/api/v2/tokens", headers=mine).status_code == 200,
        30,
        "the token to authenticate again",
    )
    assert any(
        r.get("child") == "redis" and "restarting" in r["message"] for r in relay_up.records()
    )


def test_second_up_on_the_same_data_dir_is_refused(relay_up: RelayUp, tmp_path: Path) -> None:
    """Two `relay up` on one data directory would share one AOF: the second exits with 2,
    naming the directory and the processes that hold it."""
    result = subprocess.run(
        up_command(free_port(), relay_up.data_dir),
        cwd=tmp_path,
        env=up_environment(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert f"another `relay up` is using {relay_up.data_dir}" in result.stderr
    assert str(relay_up.process.pid) in result.stderr


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_stop_signal_ends_everything_within_10s(signum: int, tmp_path: Path) -> None:
    """SIGINT or SIGTERM stops `relay up` within 10 s and leaves no process behind."""
    # given: everything running, the worker ready
    up = start(tmp_path)
    try:
        wait_for(lambda: ready(up), STARTUP_LIMIT, "/readyz")
        seen = up.descendants()
        assert {"redis", "api", "worker", "beat"} <= up.roles()
        # when
        started = time.monotonic()
        up.process.send_signal(signum)
        code = up.process.wait(15)
        took = time.monotonic() - started
        # then
        assert code == 0
        assert took <= 10.0, f"stopping took {took:.1f}s"
        left = [proc for proc in seen if alive(proc)]
        assert left == [], f"still running: {[p.cmdline() for p in left]}"
        assert not (up.data_dir / "redis.url").exists()
    finally:
        stop(up)
