"""`relay up` killed by SIGKILL: nothing of it outlives it, nothing it acknowledged is lost."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import httpx
import pytest

from relay.cli.embedded_redis import free_port, start_redis
from tests.relay.cli.up_process import (
    STARTUP_LIMIT,
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

ORPHAN_LIMIT = 5.0  # seconds the children of a killed `relay up` may take to exit


def _events(count: int) -> list[dict[str, object]]:
    return [
        {"id": n, "type": "feature-created", "createdBy": "a@b.c", "featureName": f"crash-{n}"}
        for n in range(1, count + 1)
    ]


def test_sigkilled_up_takes_its_children_along_and_a_restart_keeps_acked_events(
    tmp_path: Path,
) -> None:
    """SIGKILL `relay up`: every child exits within 5 s; the next `relay up` on the data dir
    starts, has every event the first acknowledged, and does not print the token again."""
    # given: a relay up that acknowledged events
    first = start(tmp_path)
    second = None
    seen = []
    try:
        wait_for(lambda: ready(first), STARTUP_LIMIT, "/readyz")
        seen = first.descendants()
        assert first.roles() == {"redis", "api", "worker", "beat"}
        token = (first.data_dir / "admin-token").read_text().strip()
        acked = httpx.post(
            f"{first.url}/api/events", json=_events(20), headers={"Authorization": token}
        )
        assert acked.status_code == 202, acked.text
        # when
        first.process.kill()
        first.process.wait(10)
        # then (wait_for fails the test if one is still alive after ORPHAN_LIMIT)
        wait_for(
            lambda: not any(alive(proc) for proc in seen), ORPHAN_LIMIT, "the children to exit"
        )
        second = start(tmp_path)
        wait_for(lambda: healthy(second), STARTUP_LIMIT, "/healthz of the second relay up")
        # then
        listed = httpx.get(
            f"{second.url}/api/admin/events", headers={"Authorization": token}, timeout=10
        )
        assert listed.status_code == 200
        names = {event["featureName"] for event in listed.json()["events"]}
        assert names == {f"crash-{n}" for n in range(1, 21)}
        wait_for(lambda: "Press Ctrl-C to stop." in second.stdout, 10, "the banner")
        banner = "\n".join(second.stdout)
        assert token not in banner
        assert str(second.data_dir / "admin-token") in banner
    finally:
        stop(first, seen)
        if second is not None:
            stop(second)


def test_up_refuses_a_data_dir_that_a_leftover_redis_still_uses(tmp_path: Path) -> None:
    """A Redis still running on the data dir (left by a crash) makes `relay up` exit 2, naming
    the directory and the process, instead of starting a second Redis on the same AOF."""
    # given
    leftover = start_redis(tmp_path / "data")
    try:
        # when
        started = time.monotonic()
        result = subprocess.run(
            up_command(free_port(), tmp_path / "data"),
            cwd=tmp_path,
            env=up_environment(),
            capture_output=True,
            text=True,
            timeout=60,
        )
        # then
        assert result.returncode == 2
        assert time.monotonic() - started < 10
        assert f"another `relay up` is using {(tmp_path / 'data').resolve()}" in result.stderr
        assert str(leftover.process.pid) in result.stderr
    finally:
        leftover.stop()
