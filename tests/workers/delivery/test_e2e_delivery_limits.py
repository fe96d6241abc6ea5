"""End to end: a subscription's own maxPerSecond and maxInFlight hold across two worker
processes, measured at the receiver."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from relay.api.app import create_app
from relay.cli.embedded_redis import start_redis
from relay.settings import Settings
from relay.store.client import connect
from tests import support

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ADMIN = {"Authorization": "e2e-admin"}
REPLY_DELAY = 0.5


@pytest.fixture(scope="module")
def e2e_settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    server = start_redis(tmp_path_factory.mktemp("limits-redis"))
    yield support.e2e_settings(
        redis_url=server.url,
        admin_token=ADMIN["Authorization"],
        data_dir=tmp_path_factory.mktemp("limits-data"),
    )
    server.stop()


@pytest.fixture(scope="module")
def api(e2e_settings: Settings, start_module_worker: Callable[..., Any]) -> Iterator[TestClient]:
    """Two worker processes (one with beat) and the API."""
    start_module_worker(e2e_settings, beat=True)
    start_module_worker(e2e_settings, beat=False)
    client = connect(e2e_settings.require_redis_url())
    with TestClient(create_app(e2e_settings, redis=client)) as test_client:
        yield test_client


def _subscribe(api: TestClient, url: str, delivery: dict[str, Any]) -> str:
    client = connect(api.app.state.settings.require_redis_url())  # type: ignore[attr-defined]
    try:
        return support.subscribe(client, url=url, name="limits", delivery=delivery)
    finally:
        client.close()


def _events(api: TestClient, count: int, name: str) -> None:
    events = [support.unleash_event(featureName=f"{name}-{n}") for n in range(count)]
    support.post_events(api, events, headers=ADMIN)


def test_max_per_second_holds_across_two_workers(api: TestClient, receivers: Any) -> None:
    """maxPerSecond 5, 30 events at once: at most 10 in any second (5 saved up and 5 more),
    so the last arrives after about 5 s; all are delivered."""
    # given
    receiver = receivers()
    _subscribe(api, receiver.url, {"maxPerSecond": 5})
    # when
    _events(api, 30, "paced")
    # then
    arrivals = sorted(r.at for r in receiver.wait_for(30, timeout=40))
    busiest = max(sum(1 for t in arrivals if start <= t < start + 1) for start in arrivals)
    assert busiest <= 10, busiest
    assert arrivals[-1] - arrivals[0] >= 4.0


def test_max_in_flight_holds_across_two_workers(api: TestClient, receivers: Any) -> None:
    """maxInFlight 2 to a receiver answering in 0.5 s: never more than two requests at once,
    though both workers have slots to spare."""
    # given
    receiver = receivers()
    receiver.always(200, delay=REPLY_DELAY)
    _subscribe(api, receiver.url, {"maxInFlight": 2})
    # when
    _events(api, 12, "narrow")
    # then: each request is open from its arrival until its answer
    arrivals = sorted(r.at for r in receiver.wait_for(12, timeout=40))
    overlap = max(sum(1 for t in arrivals if t <= start < t + REPLY_DELAY) for start in arrivals)
    assert overlap <= 2, overlap
