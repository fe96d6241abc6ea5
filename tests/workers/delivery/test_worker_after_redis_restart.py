"""A worker that holds a task when its Redis (store and broker) is killed and restarted.

Found while looking for the cause of test_e2e_crash.py's rare failure: the Celery consumer
dies of an AttributeError inside kombu (`restore_unacked` on closing the channel finds the
transport's client gone) as soon as the broker connection drops while the worker holds an
unacknowledged message, and the worker shuts down with its beat: after the restart no
pump, sweep, fan-out or deliver task runs again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from relay.cli.embedded_redis import free_port, start_redis
from relay.settings import Settings

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ADMIN = {"Authorization": "restart-admin"}


def ingest(api: TestClient, names: list[str]) -> list[int]:
    batch = [
        {"type": "feature-updated", "createdBy": "t", "featureName": n, "project": "p"}
        for n in names
    ]
    response = api.post("/api/events", json=batch, headers=ADMIN)
    assert response.status_code == 202, response.text
    ids: list[int] = response.json()["ids"]
    return ids


def test_a_worker_busy_when_redis_restarts_keeps_taking_tasks(
    tmp_path: Path,
    receivers: Callable[[], Any],
    start_worker: Callable[..., Any],
    api_for: Callable[[Settings], TestClient],
) -> None:
    """Redis killed while the worker runs a task, restarted on its AOF: an event ingested
    after the restart still arrives."""
    # given: a fan-out task still running (its second send waits for the only slot)
    port = free_port()
    server = start_redis(tmp_path / "redis", port=port)
    try:
        config = Settings(
            redis_url=server.url,
            admin_token=ADMIN["Authorization"],
            data_dir=tmp_path / "data",
            retry_schedule=[0.2, 0.4, 0.8],
            retry_jitter=0.0,
            delivery_lease=3.0,
            delivery_concurrency=1,
            allow_private_destinations=True,
        )
        worker = start_worker(config)
        api = api_for(config)
        receiver = receivers()
        receiver.always(200, delay=2.0)
        body = {"name": "r", "config": {"url": receiver.url, "format": "unleash"}, "on": True}
        response = api.post("/api/v2/integrations/webhook", json=body, headers=ADMIN)
        assert response.status_code == 201, response.text
        sub_id = response.json()["_id"]
        ingest(api, ["a", "b"])
        receiver.wait_for(1)
        # when
        server.process.kill()
        server.process.wait()
        server = start_redis(tmp_path / "redis", port=port, password=server.password)
        after = ingest(api, ["c"])
        # then
        wanted = f"msg_{after[0]}_{sub_id}"
        deadline = time.monotonic() + 30
        while wanted not in receiver.webhook_ids() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert wanted in receiver.webhook_ids(), (
            f"never arrived; worker exit code {worker.process.poll()}, log tail:\n"
            + "\n".join(line for line in worker.output().splitlines() if line.startswith("["))[
                -3000:
            ]
        )
    finally:
        server.stop()
