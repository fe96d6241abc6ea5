"""A plain `relay worker` (and `relay beat`) through a Redis outage, with no supervisor.

Redis is stopped for `OUTAGE_SECONDS` under a running worker and beat, then started again
on the same port, password and AOF: the processes must still be running, and an event
ingested after the restart must reach its receiver, its retry too (retries go out through
beat's pump, so that needs beat connected again). Meanwhile the API must say it is not
ready (Redis gone) and refuse ingest with 503 and Retry-After.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from relay.cli.embedded_redis import EmbeddedRedis, free_port, start_redis
from relay.settings import Settings
from relay.store import heartbeats
from relay.store.client import connect
from tests.conftest import settings_env
from tests.support import eventually, post_events, subscribe_via_api, unleash_event
from workers.celery_app import create_celery

ADMIN = {"Authorization": "outage-admin"}
# what the issue asks a worker to ride out on its own (a Redis restart, a failover)
OUTAGE_SECONDS = 30.0
# shorter than the outage: a heartbeat written before it cannot make /readyz ready after it
HEARTBEAT_TTL = 12.0
# generous: a 2-core machine shared with other test runs
START_TIMEOUT = 60.0
RESUME_TIMEOUT = 60.0


@dataclass
class Child:
    """A `relay` command in its own process group, its stdout and stderr in `log`."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path

    def alive(self) -> bool:
        return self.process.poll() is None

    def describe(self) -> str:
        """Its state and the tail of its log, for an assertion's message."""
        state = "running" if self.alive() else f"exited with {self.process.returncode}"
        tail = self.log.read_text(errors="replace")[-4000:]
        return f"`relay {self.name}` {state}; log tail:\n{tail}"

    def stop(self) -> None:
        if self.alive():
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)


@pytest.fixture
def run_relay(tmp_path: Path) -> Iterator[Callable[..., Child]]:
    """Starts `python -m relay.cli <args>` with a settings' environment; all stopped after."""
    started: list[Child] = []

    def run(settings: Settings, *args: str) -> Child:
        log = tmp_path / f"{args[0]}.log"
        env = {**os.environ, **settings_env(settings), "PYTHONUNBUFFERED": "1"}
        with log.open("wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "relay.cli", *args],
                env=env,
                cwd=tmp_path,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        started.append(Child(args[0], process, log))
        return started[-1]

    yield run
    for child in reversed(started):
        child.stop()


def outage_settings(server: EmbeddedRedis, data_dir: Path) -> Settings:
    return Settings(
        redis_url=server.url,
        admin_token=ADMIN["Authorization"],
        data_dir=data_dir,
        retry_schedule=[0.2, 0.4, 0.8, 1.6, 3.2],
        retry_jitter=0.0,
        delivery_lease=3.0,
        delivery_timeout=5.0,
        worker_heartbeat_ttl=HEARTBEAT_TTL,
        allow_private_destinations=True,
    )


def wait_for_heartbeat(settings: Settings, worker: Child) -> None:
    """Return once a worker's heartbeat is in Redis (only this test's worker uses it)."""
    client = connect(settings.require_redis_url())
    deadline = time.monotonic() + START_TIMEOUT
    try:
        while not heartbeats.workers_seen(client, within_seconds=HEARTBEAT_TTL):
            assert worker.alive(), worker.describe()
            assert time.monotonic() < deadline, f"no heartbeat: {worker.describe()}"
            time.sleep(0.2)
    finally:
        client.close()


def wait_for_retried_delivery(receiver: Any, webhook_id: str, children: list[Child]) -> None:
    """Return once `webhook_id` reached `receiver` twice (its first attempt and the retry
    the pump sent); fail with the processes' logs."""
    deadline = time.monotonic() + RESUME_TIMEOUT
    while receiver.webhook_ids().count(webhook_id) < 2:
        if time.monotonic() > deadline:
            got = receiver.webhook_ids().count(webhook_id)
            logs = "\n\n".join(child.describe() for child in children)
            raise AssertionError(
                f"{webhook_id} reached the receiver {got} times in {RESUME_TIMEOUT}s, not 2\n{logs}"
            )
        time.sleep(0.2)


def wait_for_readiness(api: TestClient, status: int, *, timeout: float) -> dict[str, Any]:
    """The body of the first /readyz answer with `status` (fails after `timeout` s)."""

    def answer() -> dict[str, Any] | None:
        response = api.get("/readyz")
        body: dict[str, Any] = response.json()
        return body if response.status_code == status else None

    found: dict[str, Any] = eventually(
        answer, timeout, interval=0.5, what=f"/readyz to answer {status}"
    )
    return found


@pytest.mark.e2e
@pytest.mark.slow
def test_a_plain_worker_resumes_delivering_after_a_redis_outage(
    tmp_path: Path,
    receivers: Callable[[], Any],
    api_for: Callable[[Settings], TestClient],
    run_relay: Callable[..., Child],
) -> None:
    """Redis stopped for OUTAGE_SECONDS and started again: `relay worker` and `relay beat`
    are still running, /readyz said Redis was missing meanwhile, and an event ingested
    after the restart is attempted and retried."""
    # given: a worker and beat on a Redis of their own, an event delivered through both
    port = free_port()
    server = start_redis(tmp_path / "redis", port=port)
    try:
        settings = outage_settings(server, tmp_path / "data")
        worker = run_relay(settings, "worker")
        beat = run_relay(settings, "beat")
        wait_for_heartbeat(settings, worker)
        api = api_for(settings)
        receiver = receivers()
        sub_id = subscribe_via_api(api, receiver.url, name="outage", headers=ADMIN)
        # each event's first attempt fails: its retry goes out through beat's pump
        receiver.reply(500)
        [before] = post_events(api, [unleash_event(featureName="before")], headers=ADMIN)
        wait_for_retried_delivery(receiver, f"msg_{before}_{sub_id}", [worker, beat])
        wait_for_readiness(api, 200, timeout=START_TIMEOUT)

        # when: Redis stops (SIGTERM, as an operator's restart does)
        stopped_at = time.monotonic()
        server.stop()

        # then: the API says Redis is gone and refuses ingest for now
        body = wait_for_readiness(api, 503, timeout=20)
        assert body["redis"] is False, body
        assert any(entry.startswith("redis:") for entry in body["missing"]), body
        refused = api.post("/api/events", json=[unleash_event(featureName="x")], headers=ADMIN)
        assert refused.status_code == 503, refused.text
        assert int(refused.headers["Retry-After"]) > 0
        # and the worker and beat ride the whole outage out
        time.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - stopped_at)))
        assert worker.alive(), worker.describe()
        assert beat.alive(), beat.describe()

        # when: Redis is back on the same port, password and AOF
        server = start_redis(tmp_path / "redis", port=port, password=server.password)
        receiver.reply(500)
        [after] = post_events(api, [unleash_event(featureName="after")], headers=ADMIN)

        # then: the worker delivers again, beat's pump retries again, and the heartbeat is back
        wait_for_retried_delivery(receiver, f"msg_{after}_{sub_id}", [worker, beat])
        body = wait_for_readiness(api, 200, timeout=RESUME_TIMEOUT)
        assert body["redis"] is True and body["workers"], body
        assert worker.alive(), worker.describe()
        assert beat.alive(), beat.describe()
    finally:
        server.stop()


def test_the_worker_app_reconnects_forever_and_never_cancels_tasks_on_a_lost_broker(
    tmp_path: Path,
) -> None:
    """Outages longer than the test above: Celery's default 100 reconnects end a worker
    after about 46 minutes, and cancelling running tasks on connection loss (Celery 6's
    default) kills a threads-pool worker, which cannot cancel them."""
    settings = Settings(redis_url="redis://127.0.0.1:1/0", data_dir=tmp_path)
    conf = create_celery(settings).conf
    assert conf.broker_connection_max_retries is None
    assert conf.worker_cancel_long_running_tasks_on_connection_loss is False
