"""End to end: one subscription's slow or broken receiver never slows another's.

A real worker process (with beat), the API in-process on the same Redis, real receivers on
127.0.0.1. Timeouts, caps and cool-downs are small so that each test takes seconds.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from relay.settings import Settings
from relay.store import subscriptions
from relay.store.client import Redis
from tests import support
from tests.support import eventually

# redis_client: each test starts on an emptied database (conftest's `api_for` opens the API)
pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.usefixtures("redis_client")]

ADMIN = {"Authorization": "test-admin-token"}
SUBS = "/api/v2/integrations/webhook"


def isolation_settings(settings: Settings, **changes: Any) -> Settings:
    """The test settings with a short timeout, a small cap and a quick circuit breaker."""
    values = {
        **settings.model_dump(),
        "delivery_timeout": 1.0,
        "delivery_concurrency": 8,
        "subscription_max_in_flight": 3,
        "circuit_failures": 3,
        "circuit_cooldown": 1.0,
        "circuit_cooldown_max": 2.0,
        "retry_schedule": [0.2, 0.4, 0.8, 1.6, 3.2, 6.4],
        **changes,
    }
    return Settings(**values)


def subscribe(api: TestClient, url: str, project: str) -> str:
    statements = [
        {"effect": "allow", "resources": [f"proj/{project}:env/*:flag/*"], "actions": ["*"]}
    ]
    return support.subscribe_via_api(api, url, name=project, headers=ADMIN, statements=statements)


def post_events(api: TestClient, project: str, count: int) -> list[int]:
    events = [
        {
            "type": "feature-created",
            "createdBy": "isolation@example.com",
            "featureName": f"{project}-{n}",
            "project": project,
        }
        for n in range(count)
    ]
    return support.post_events(api, events, headers=ADMIN)


def status_of(api: TestClient, sub_id: str) -> dict[str, Any]:
    response = api.get(f"{SUBS}/{sub_id}", headers=ADMIN)
    assert response.status_code == 200, response.text
    status: dict[str, Any] = response.json()["_status"]
    return status


def deliveries_of(api: TestClient, sub_id: str) -> list[dict[str, Any]]:
    return support.deliveries_of(api, sub_id, headers=ADMIN, limit=100)


def test_a_hanging_receiver_does_not_delay_another_subscription(
    settings: Settings,
    start_worker: Callable[..., Any],
    receivers: Callable[[], Any],
    api_for: Callable[[Settings], TestClient],
) -> None:
    """40 deliveries to a receiver that never answers in time leave the others' sends free."""
    # given: the hanging subscription's sends are in flight, more of them pending
    config = isolation_settings(settings, circuit_failures=1000)  # the cap alone
    api = api_for(config)
    start_worker(config)
    hanging, fast = receivers(), receivers()
    hanging.always(200, delay=10.0)
    subscribe(api, hanging.url, "hanging")
    subscribe(api, fast.url, "fast")
    post_events(api, "hanging", 40)
    hanging.wait_for(1)
    time.sleep(0.3)
    # when
    waits = []
    for n in range(5):
        sent = time.time()
        post_events(api, "fast", 1)
        [*_, last] = fast.wait_for(n + 1, timeout=15)
        waits.append(last.at - sent)
    # then
    assert max(waits) < 1.5, waits


def test_in_flight_to_one_subscription_never_exceeds_the_cap(
    settings: Settings,
    start_worker: Callable[..., Any],
    receivers: Callable[[], Any],
    api_for: Callable[[Settings], TestClient],
) -> None:
    """A burst of 30 to a 0.5 s receiver: at most 3 at a time, the next as soon as one ends."""
    # given
    config = isolation_settings(settings, delivery_concurrency=64)
    api = api_for(config)
    start_worker(config)
    receiver = receivers()
    delay = 0.5
    receiver.always(200, delay=delay)
    sub_id = subscribe(api, receiver.url, "burst")
    # when
    post_events(api, "burst", 30)
    received = receiver.wait_for(30, timeout=30)
    # then: a request is at the receiver from its arrival until `delay` later
    arrivals = sorted(r.at for r in received)
    overlapping = max(
        sum(1 for other in arrivals if start <= other < start + delay * 0.9) for start in arrivals
    )
    assert overlapping <= 3, arrivals
    # waiting deliveries start when a slot frees, not at the pump's next tick (1 s)
    assert arrivals[-1] - arrivals[0] < 9 * delay + 2.0, arrivals
    assert eventually(
        lambda: len([d for d in deliveries_of(api, sub_id) if d["state"] == "delivered"]) == 30,
        timeout=20,
    )
    assert all(d["attemptCount"] == 1 for d in deliveries_of(api, sub_id))


def test_the_circuit_opens_after_timeouts_and_a_probe_closes_it(
    settings: Settings,
    start_worker: Callable[..., Any],
    receivers: Callable[[], Any],
    api_for: Callable[[Settings], TestClient],
) -> None:
    """3 timeouts open it (`_status`, /metrics); nothing is sent until a probe; it closes."""
    # given
    config = isolation_settings(settings, circuit_cooldown=1.5, circuit_cooldown_max=1.5)
    api = api_for(config)
    start_worker(config)
    receiver = receivers()
    receiver.always(200, delay=3.0)
    sub_id = subscribe(api, receiver.url, "down")
    # when
    post_events(api, "down", 10)
    # then: open, and the receiver gets nothing more than what was in flight and probes
    status = eventually(
        lambda: (s := status_of(api, sub_id)).get("circuitState") == "open" and s, timeout=20
    )
    assert status["circuitOpenedAt"] <= status["circuitRetryAt"]
    metrics = api.get("/metrics", headers=ADMIN).text
    assert f'relay_circuit_open{{subscription="{sub_id}"}} 1.0' in metrics
    opened_with = len(receiver.received)
    time.sleep(1.0)
    assert len(receiver.received) <= opened_with + 1  # at most one probe
    waiting = [d for d in deliveries_of(api, sub_id) if d["state"] == "pending"]
    assert waiting and all(d["attemptCount"] == 0 for d in waiting)  # waiting is no attempt
    # when: the receiver recovers
    receiver.always(200)
    # then: a probe closes the circuit and every delivery arrives
    eventually(lambda: "circuitState" not in status_of(api, sub_id), timeout=20)
    eventually(
        lambda: all(d["state"] == "delivered" for d in deliveries_of(api, sub_id)), timeout=20
    )
    metrics = api.get("/metrics", headers=ADMIN).text
    assert f'relay_circuit_open{{subscription="{sub_id}"}}' not in metrics


def test_a_destination_refused_at_connect_turns_the_subscription_off(
    settings: Settings,
    redis_client: Redis,
    start_worker: Callable[..., Any],
    receivers: Callable[[], Any],
    api_for: Callable[[Settings], TestClient],
) -> None:
    """A URL whose name now resolves to a private address: off at once, the reason shown."""
    # given: stored as it was accepted, before `localhost` meant a private address
    config = isolation_settings(settings, allow_private_destinations=False)
    api = api_for(config)
    worker = start_worker(config)
    receiver = receivers()
    port = receiver.url.split(":")[2].split("/")[0]
    record = support.subscription(redis_client, url=f"http://localhost:{port}/hook", name="refused")
    # when
    post_events(api, "any", 3)
    # then
    status = eventually(
        lambda: (s := status_of(api, record.id)).get("disabledReason") and s, timeout=20
    )
    assert "destination refused" in status["disabledReason"]
    stored = subscriptions.get_subscription(redis_client, sub_id=record.id)
    assert stored is not None and not stored.on
    assert receiver.received == []
    states = eventually(
        lambda: (
            (d := deliveries_of(api, record.id)) and all(x["state"] != "pending" for x in d) and d
        ),
        timeout=20,
    )
    assert {d["state"] for d in states} <= {"dead", "skipped"}
    assert "turning it off" in worker.output()
