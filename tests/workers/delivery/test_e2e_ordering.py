"""End to end: an ordered subscription keeps each flag's events in order through receiver
failures and a worker SIGKILLed mid-run."""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from relay.api.app import create_app
from relay.cli.embedded_redis import start_redis
from relay.settings import Settings
from relay.store import deliveries
from relay.store.client import connect
from relay.store.deliveries import DeliveryState
from tests import support

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ADMIN = {"Authorization": "e2e-admin"}
FLAGS, PER_FLAG = 10, 20
FAILURE_SHARE = 0.3


@pytest.fixture
def e2e_settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """Retries every 0.1 s, many of them: at 30 % failures no event runs out of attempts."""
    server = start_redis(tmp_path_factory.mktemp("ordering-redis"))
    yield support.e2e_settings(
        redis_url=server.url,
        admin_token=ADMIN["Authorization"],
        data_dir=tmp_path_factory.mktemp("ordering-data"),
        retry_schedule=[0.1] * 15,
    )
    server.stop()


@pytest.fixture
def api(e2e_settings: Settings) -> Iterator[TestClient]:
    client = connect(e2e_settings.require_redis_url())
    with TestClient(create_app(e2e_settings, redis=client)) as test_client:
        yield test_client


def _events() -> list[dict[str, Any]]:
    """FLAGS x PER_FLAG events, interleaved: flag 0's first, flag 1's first, ..."""
    return [
        support.unleash_event(featureName=f"ordered-{flag}", project="web", data={"n": n})
        for n in range(PER_FLAG)
        for flag in range(FLAGS)
    ]


def _out_of_order(requests: list[Any], replies: list[int]) -> list[str]:
    """Requests of an event sent before every earlier event of its flag was delivered (a
    re-send of the event just delivered, after a crash, is allowed: it is a duplicate)."""
    delivered: dict[str, int] = {}
    wrong = []
    for request, status in zip(requests, replies, strict=False):
        event = json.loads(request.body)
        flag, n = event["featureName"], event["data"]["n"]
        done = delivered.get(flag, 0)
        if n > done or n < done - 1:
            wrong.append(f"{flag} #{n} sent with {done} delivered")
        if status == 200 and n == done:
            delivered[flag] = done + 1
    return wrong


def test_each_flag_is_delivered_in_order_through_failures_and_a_killed_worker(
    api: TestClient,
    e2e_settings: Settings,
    start_worker: Callable[..., Any],
    receivers: Any,
) -> None:
    """200 interleaved events of 10 flags, 30 % of requests failing, the worker SIGKILLed
    once: every event delivered, none sent before its flag's previous one was delivered."""
    # given: an ordered subscription whose receiver fails 30 % of requests
    generator = random.Random(15)
    replies = [500 if generator.random() < FAILURE_SHARE else 200 for _ in range(2_000)]
    receiver = receivers()
    for status in replies:
        receiver.reply(status, body=b"flaky")
    response = api.post(
        "/api/v2/integrations/webhook",
        json={"name": "ordered", "config": {"url": receiver.url}, "delivery": {"ordering": "flag"}},
        headers=ADMIN,
    )
    assert response.status_code == 201, response.text
    sub_id = response.json()["_id"]
    worker = start_worker(e2e_settings, beat=True)
    # when: the events come, and the worker is killed while delivering them
    event_ids = support.post_events(api, _events(), headers=ADMIN)
    receiver.wait_for(40, timeout=60)
    worker.kill()
    time.sleep(0.5)
    start_worker(e2e_settings, beat=True)
    # then: every event delivered
    store = connect(e2e_settings.require_redis_url())
    ids = [deliveries.event_delivery_id(event_id=e, sub_id=sub_id) for e in event_ids]
    support.eventually(
        lambda: all(_state(store, i) is DeliveryState.DELIVERED for i in ids),
        timeout=120,
        interval=0.5,
        what="every event delivered",
    )
    # and none before its flag's previous one was delivered
    requests = list(receiver.received)
    assert _out_of_order(requests, replies) == []
    assert any(status == 500 for status in replies[: len(requests)])


def _state(client: Any, delivery_id: str) -> DeliveryState | None:
    delivery = deliveries.get_delivery(client, delivery_id=delivery_id)
    return None if delivery is None else delivery.state
