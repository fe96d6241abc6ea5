"""Delivery of a batch: claim, render, sign, POST to a real receiver, record, decide.

Plain functions on a real Redis and real HTTP receivers on 127.0.0.1, no Celery.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from standardwebhooks import Webhook

from relay import clock
from relay.integrations.catalog import load_catalog
from relay.settings import Settings
from relay.store import deliveries, keys, subscription_status, subscriptions
from relay.store.client import Redis
from relay.store.deliveries import Delivery, DeliveryKind, DeliveryState, NewDelivery
from tests import support
from workers.delivery import batch
from workers.delivery.batch import Done
from workers.delivery.sender import LoopSender
from workers.delivery.subscription_cache import SubscriptionCache

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


@pytest.fixture
def sender(settings: Settings) -> Iterator[LoopSender]:
    loop_sender = LoopSender(settings)
    yield loop_sender
    loop_sender.close()


@pytest.fixture
def deliver(
    redis_client: Redis, settings: Settings, sender: LoopSender
) -> Callable[..., list[Done]]:
    """Run one batch now (or at `at_ms`) and return what happened to each delivery."""
    cache = SubscriptionCache(critical_environments=settings.critical_set)
    catalog = load_catalog(settings)

    def run(ids: list[str], *, at_ms: int | None = None, config: Settings = settings) -> list[Done]:
        now = (lambda: at_ms) if at_ms is not None else clock.now_ms
        attempts = batch.deliver_batch(
            redis_client,
            ids=ids,
            settings=config,
            cache=cache,
            catalog=catalog,
            send=sender.send_all,
            clock=now,
        )
        return sender.run(attempts)

    return run


def subscribe(client: Redis, url: str, **fields: Any) -> str:
    """A subscription signed with SECRET that sends an X-Team header."""
    team = {"X-Team": "core"}
    return support.subscribe(client, url=url, name="d", secret=SECRET, headers=team, **fields)


def pending(client: Redis, sub_id: str, *, kind: DeliveryKind = DeliveryKind.EVENT) -> str:
    """A recorded event and its pending delivery to `sub_id`; the delivery id."""
    event_id = support.record_event(client, createdBy="me")
    if kind is DeliveryKind.TEST:
        new = NewDelivery(f"msg_test_{sub_id}", kind, sub_id, None)
    else:
        new = NewDelivery(
            deliveries.event_delivery_id(event_id=event_id, sub_id=sub_id), kind, sub_id, event_id
        )
    now = clock.now_ms()
    deliveries.create_deliveries(client, deliveries=[new], now_ms=now, due_at_ms=now + 60_000)
    return new.id


def state_of(client: Redis, delivery_id: str) -> Delivery:
    delivery = deliveries.get_delivery(client, delivery_id=delivery_id)
    assert delivery is not None
    return delivery


def test_a_delivery_is_posted_signed_and_recorded(
    redis_client: Redis, receivers: Callable[[], Any], deliver: Callable[..., list[Done]]
) -> None:
    """The receiver gets the event, signed, with webhook-id = delivery id; it is delivered."""
    # given
    receiver = receivers()
    receiver.reply(200, body=b"thanks")
    sub_id = subscribe(redis_client, receiver.url)
    delivery_id = pending(redis_client, sub_id)
    # when
    [done] = deliver([delivery_id])
    # then
    [request] = receiver.received
    assert request.headers["webhook-id"] == delivery_id and request.headers["x-team"] == "core"
    assert Webhook(SECRET).verify(request.body, request.headers)["featureName"] == "f"
    ld = hmac.new(SECRET.encode(), request.body, hashlib.sha256).hexdigest()
    assert request.headers["x-ld-signature"] == ld
    delivery = state_of(redis_client, delivery_id)
    assert delivery.state is DeliveryState.DELIVERED and delivery.attempts == 1
    [attempt] = deliveries.get_attempts(redis_client, delivery_id=delivery_id)
    assert (attempt.status_code, attempt.response_body, attempt.outcome) == (
        200,
        "thanks",
        "delivered",
    )
    assert done.finish.state is DeliveryState.DELIVERED
    assert subscription_status.get_status(redis_client, sub_id=sub_id)["successCount"] == 1


def test_a_failed_attempt_is_retried_on_the_schedule(
    redis_client: Redis,
    settings: Settings,
    receivers: Callable[[], Any],
    deliver: Callable[..., list[Done]],
) -> None:
    """A 500 schedules the next attempt by the retry schedule and counts in `_status`."""
    # given
    receiver = receivers()
    receiver.always(500, body=b"oops")
    sub_id = subscribe(redis_client, receiver.url)
    delivery_id = pending(redis_client, sub_id)
    now = clock.now_ms()
    # when
    deliver([delivery_id], at_ms=now)
    # then
    delivery = state_of(redis_client, delivery_id)
    assert delivery.state is DeliveryState.FAILED
    assert delivery.next_attempt_at == now + int(settings.retry_schedule[0] * 1000)
    status = subscription_status.get_status(redis_client, sub_id=sub_id)
    assert status["errorCount"] == 1 and status["errors"][0]["statusCode"] == 500
    assert deliver([delivery_id], at_ms=now + 1) == []  # not due yet


def test_retry_after_lengthens_the_wait(
    redis_client: Redis, receivers: Callable[[], Any], deliver: Callable[..., list[Done]]
) -> None:
    """A 503 with Retry-After: 7 waits 7 s, not the scheduled 0.2 s."""
    # given
    receiver = receivers()
    receiver.reply(503, headers={"Retry-After": "7"})
    delivery_id = pending(redis_client, subscribe(redis_client, receiver.url))
    now = clock.now_ms()
    # when
    deliver([delivery_id], at_ms=now)
    # then
    assert state_of(redis_client, delivery_id).next_attempt_at == now + 7000


def test_an_exhausted_schedule_makes_a_dead_delivery(
    redis_client: Redis, receivers: Callable[[], Any], deliver: Callable[..., list[Done]]
) -> None:
    """One attempt plus one per schedule step (3), then dead with the reason."""
    # given
    receiver = receivers()
    receiver.always(500)
    delivery_id = pending(redis_client, subscribe(redis_client, receiver.url))
    at = clock.now_ms()
    # when
    for _ in range(4):
        deliver([delivery_id], at_ms=at)
        at += 60_000
    # then
    delivery = state_of(redis_client, delivery_id)
    assert delivery.state is DeliveryState.DEAD and delivery.attempts == 4
    assert delivery.reason == "gave up after 4 attempts" and len(receiver.received) == 4
    assert deliver([delivery_id], at_ms=at) == []


def test_410_turns_the_subscription_off(
    redis_client: Redis, receivers: Callable[[], Any], deliver: Callable[..., list[Done]]
) -> None:
    """410 Gone: the delivery is gone and the subscription is off, with the reason shown."""
    # given
    receiver = receivers()
    receiver.reply(410)
    sub_id = subscribe(redis_client, receiver.url)
    delivery_id = pending(redis_client, sub_id)
    # when
    deliver([delivery_id])
    # then
    assert state_of(redis_client, delivery_id).state is DeliveryState.GONE
    record = subscriptions.get_subscription(redis_client, sub_id=sub_id)
    assert record is not None and not record.on
    status = subscription_status.get_status(redis_client, sub_id=sub_id)
    assert status["disabledReason"] == "receiver answered 410 Gone"


def test_deliveries_of_off_or_deleted_subscriptions_are_skipped(
    redis_client: Redis, receivers: Callable[[], Any], deliver: Callable[..., list[Done]]
) -> None:
    """Nothing is sent for a subscription that is off or deleted; the reason is kept."""
    # given
    receiver = receivers()
    off_id = subscribe(redis_client, receiver.url)
    deleted_id = subscribe(redis_client, receiver.url)
    off_delivery, deleted_delivery = (
        pending(redis_client, off_id),
        pending(redis_client, deleted_id),
    )
    subscriptions.turn_off(redis_client, sub_id=off_id, reason="test")
    subscriptions.delete_subscription(redis_client, sub_id=deleted_id)
    # when
    deliver([off_delivery, deleted_delivery])
    # then
    assert receiver.received == []
    off, deleted = state_of(redis_client, off_delivery), state_of(redis_client, deleted_delivery)
    assert (off.state, off.reason) == (DeliveryState.SKIPPED, "subscription is off")
    assert (deleted.state, deleted.reason) == (DeliveryState.SKIPPED, "subscription deleted")


def test_a_subscription_failing_longer_than_disable_after_is_turned_off(
    redis_client: Redis,
    settings: Settings,
    receivers: Callable[[], Any],
    deliver: Callable[..., list[Done]],
) -> None:
    """Failing continuously for RELAY_DISABLE_AFTER turns the subscription off."""
    # given
    receiver = receivers()
    receiver.always(502)
    sub_id = subscribe(redis_client, receiver.url)
    config = settings.model_copy(update={"disable_after": 30.0})
    first, second = pending(redis_client, sub_id), pending(redis_client, sub_id)
    at = clock.now_ms()
    deliver([first], at_ms=at, config=config)
    record = subscriptions.get_subscription(redis_client, sub_id=sub_id)
    assert record is not None and record.on
    # when
    deliver([second], at_ms=at + 31_000, config=config)
    # then
    record = subscriptions.get_subscription(redis_client, sub_id=sub_id)
    assert record is not None and not record.on
    reason = subscription_status.get_status(redis_client, sub_id=sub_id)["disabledReason"]
    assert "failing continuously" in reason


def test_a_test_delivery_is_sent_once_even_when_off(
    redis_client: Redis, receivers: Callable[[], Any], deliver: Callable[..., list[Done]]
) -> None:
    """A test event goes to a subscription that is off; a failure is final and not counted."""
    # given
    receiver = receivers()
    receiver.reply(500)
    sub_id = subscribe(redis_client, receiver.url, on=False)
    delivery_id = pending(redis_client, sub_id, kind=DeliveryKind.TEST)
    # when
    deliver([delivery_id])
    # then
    [request] = receiver.received
    assert json.loads(request.body)["type"] == "relay-test"
    delivery = state_of(redis_client, delivery_id)
    assert (
        delivery.state is DeliveryState.DEAD and delivery.reason == "test deliveries are tried once"
    )
    assert subscription_status.get_status(redis_client, sub_id=sub_id)["errorCount"] == 0


def test_a_delivery_is_attempted_by_one_worker_at_a_time(
    redis_client: Redis, receivers: Callable[[], Any], deliver: Callable[..., list[Done]]
) -> None:
    """While one batch holds the claim, another batch with the same id sends nothing."""
    # given
    receiver = receivers()
    receiver.reply(200, delay=0.5)
    delivery_id = pending(redis_client, subscribe(redis_client, receiver.url))
    results: list[list[Done]] = []
    # when
    slow = threading.Thread(target=lambda: results.append(deliver([delivery_id])))
    slow.start()
    receiver.wait_for(1)
    duplicate = deliver([delivery_id])
    slow.join()
    # then
    assert duplicate == [] and len(results[0]) == 1 and len(receiver.received) == 1


def test_undeliverable_payloads_are_dead_without_a_request(
    redis_client: Redis, receivers: Callable[[], Any], deliver: Callable[..., list[Done]]
) -> None:
    """An unknown format or an event no longer recorded: dead at once, with the reason."""
    # given
    receiver = receivers()
    odd = pending(redis_client, subscribe(redis_client, receiver.url, fmt="xml"))
    trimmed = pending(redis_client, subscribe(redis_client, receiver.url))
    event_id = state_of(redis_client, trimmed).event_id
    redis_client.delete(keys.event(event_id or 0))
    # when
    deliver([odd, trimmed])
    # then
    assert receiver.received == []
    assert "unknown payload format" in state_of(redis_client, odd).reason
    assert "no longer recorded" in state_of(redis_client, trimmed).reason
