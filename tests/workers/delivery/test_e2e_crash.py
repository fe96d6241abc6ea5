"""End to end under failure: a worker SIGKILLed mid-burst, Redis killed and restarted.

Each test runs its own worker process(es) and checks that every delivery of a burst
reaches its receiver at least once.
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
from relay.store import deliveries, keys
from relay.store.client import Redis, connect
from tests.support import post_events, subscribe_via_api, unleash_event

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ADMIN = {"Authorization": "crash-admin"}
EVENTS = 100


def crash_settings(redis_url: str, data_dir: Path) -> Settings:
    return Settings(
        redis_url=redis_url,
        admin_token=ADMIN["Authorization"],
        data_dir=data_dir,
        retry_schedule=[0.2, 0.4, 0.8, 1.6, 3.2],
        retry_jitter=0.0,
        delivery_lease=3.0,
        delivery_timeout=5.0,
        # few sends in flight, so a burst to slow receivers lasts seconds: the kill lands mid-burst
        delivery_concurrency=8,
        allow_private_destinations=True,
    )


def ingest_burst(api: TestClient, count: int) -> list[int]:
    ids: list[int] = []
    for start in range(0, count, 10):
        batch = [
            unleash_event(type="feature-updated", createdBy="crash", featureName=f"f{i}")
            for i in range(start, start + 10)
        ]
        ids += post_events(api, batch, headers=ADMIN)
    return ids


def wait_for_ids(
    receivers: list[Any], expected: set[str], *, settings: Settings, timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    seen: set[str] = set()
    while time.monotonic() < deadline:
        seen = {i for receiver in receivers for i in receiver.webhook_ids()}
        if expected <= seen:
            return
        time.sleep(0.1)
    client = connect(settings.require_redis_url())
    missing = sorted(expected - seen)
    states = [deliveries.get_delivery(client, delivery_id=i) for i in missing[:5]]
    where = [
        {
            "due": client.zscore(keys.DUE, d.id),
            "waiting": client.zscore(keys.subscription_waiting(d.sub_id), d.id),
            "in flight": client.zscore(keys.subscription_inflight(d.sub_id), d.id),
        }
        for d in states
        if d is not None
    ]
    raise AssertionError(f"{len(missing)} of {len(expected)} never arrived, e.g. {states} {where}")


def test_a_sigkilled_worker_loses_no_delivery(
    settings: Settings,
    redis_client: Redis,
    receivers: Callable[[], Any],
    start_worker: Callable[..., Any],
    api_for: Callable[[Settings], TestClient],
) -> None:
    """Kill -9 the worker mid-burst, start another: every delivery arrives at least once."""
    # given
    config = crash_settings(settings.require_redis_url(), settings.data_dir)
    first = start_worker(config)
    api = api_for(config)
    slow = [receivers(), receivers()]
    for receiver in slow:
        receiver.always(200, delay=0.4)
    sub_ids = [subscribe_via_api(api, r.url, name="crash", headers=ADMIN) for r in slow]
    event_ids = ingest_burst(api, EVENTS)
    expected = {f"msg_{e}_{s}" for e in event_ids for s in sub_ids}
    slow[0].wait_for(10)
    # when
    first.kill()
    arrived = {i for receiver in slow for i in receiver.webhook_ids()}
    start_worker(config)
    # then
    assert len(arrived) < len(expected), "the burst was over before the kill"
    wait_for_ids(slow, expected, settings=config, timeout=45)


# Failed about once in seven full-suite runs with Celery 5.7.0: its worker died of the
# broker connection loss (see test_worker_after_redis_restart.py), so no pump or sweep ran
# after the restart, and the test passed only when every remaining delivery was already
# held by the dying worker's sender. The failure message says where missing deliveries sit.
def test_redis_killed_and_restarted_from_its_aof_loses_nothing(
    tmp_path: Path,
    receivers: Callable[[], Any],
    start_worker: Callable[..., Any],
    api_for: Callable[[Settings], TestClient],
) -> None:
    """Kill -9 Redis mid-burst after the API acked, restart it on its AOF: all arrive."""
    # given
    port = free_port()
    server = start_redis(tmp_path / "redis", port=port)
    try:
        config = crash_settings(server.url, tmp_path / "data")
        worker = start_worker(config)
        api = api_for(config)
        slow = [receivers(), receivers()]
        for receiver in slow:
            receiver.always(200, delay=0.4)
        sub_ids = [subscribe_via_api(api, r.url, name="crash", headers=ADMIN) for r in slow]
        event_ids = ingest_burst(api, EVENTS)
        expected = {f"msg_{e}_{s}" for e in event_ids for s in sub_ids}
        time.sleep(1.2)  # appendfsync everysec: what was acked a second ago is on disk
        # when
        server.process.kill()
        server.process.wait()
        arrived = {i for receiver in slow for i in receiver.webhook_ids()}
        server = start_redis(tmp_path / "redis", port=port, password=server.password)
        # then
        assert len(arrived) < len(expected), "the burst was over before the kill"
        wait_for_ids(slow, expected, settings=config, timeout=60)
        assert worker.process.poll() is None, "the worker did not survive the restart"
    finally:
        server.stop()
