"""Fan-out, the subscription cache, pump and sweep on a real Redis (plain functions, no Celery)."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

import pytest

from policies import map_event
from relay.observability.logs import activity_level
from relay.settings import Settings
from relay.store import deliveries, events, keys, subscriptions
from relay.store.client import Redis
from relay.store.deliveries import DeliveryState, Finish
from tests.support import subscribe
from workers.delivery import fanout, pump
from workers.delivery.subscription_cache import SubscriptionCache

NOW = 1_800_000_000_000


class Recorder:
    """An `enqueue` that remembers what it was asked to enqueue."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []

    def __call__(self, ids: Sequence[str]) -> None:
        self.batches.append(list(ids))

    @property
    def ids(self) -> list[str]:
        return [i for batch in self.batches for i in batch]


def record(client: Redis, *names: str, environment: str | None = None) -> list[int]:
    batch = [
        {
            "type": "feature-environment-enabled" if environment else "feature-created",
            "createdBy": "test",
            "featureName": name,
            "project": "default",
            "environment": environment,
        }
        for name in names
    ]
    return events.record_events(client, events=batch, source="test")


def cache_for(settings: Settings) -> SubscriptionCache:
    return SubscriptionCache(critical_environments=settings.critical_set)


def test_each_event_gets_one_delivery_per_subscription_that_wants_it(
    redis_client: Redis, settings: Settings
) -> None:
    """Subscriptions that are on and include the event get it; off or excluding ones do not."""
    # given
    everything = subscribe(redis_client)
    production_only = subscribe(
        redis_client,
        statements=[
            {"effect": "allow", "resources": ["proj/*:env/production:flag/*"], "actions": ["*"]}
        ],
    )
    subscribe(redis_client, on=False)
    [created] = record(redis_client, "a")
    [enabled] = record(redis_client, "b", environment="staging")
    [in_production] = record(redis_client, "c", environment="production")
    enqueue = Recorder()
    # when
    result = fanout.fan_out(
        redis_client,
        event_ids=[created, enabled, in_production],
        cache=cache_for(settings),
        settings=settings,
        now_ms=NOW,
        enqueue=enqueue,
    )
    # then
    expected = {
        f"msg_{created}_{everything}",
        f"msg_{enabled}_{everything}",
        f"msg_{in_production}_{everything}",
        f"msg_{in_production}_{production_only}",
        # feature-created has no environment: global, so env/production matches it
        f"msg_{created}_{production_only}",
    }
    assert set(result.delivery_ids) == expected and set(enqueue.ids) == expected
    assert redis_client.zcard(keys.OUTBOX) == 0
    delivery = deliveries.get_delivery(redis_client, delivery_id=f"msg_{enabled}_{everything}")
    assert delivery is not None and delivery.event_id == enabled
    assert delivery.sub_id == everything and delivery.state is DeliveryState.PENDING


def test_fanning_out_again_creates_nothing_new(redis_client: Redis, settings: Settings) -> None:
    """A repeated fan-out (sweep, redelivered task) re-enqueues pending deliveries, no more."""
    # given
    sub_id = subscribe(redis_client)
    first_id, second_id = record(redis_client, "a", "b")
    cache = cache_for(settings)
    fanout.fan_out(
        redis_client,
        event_ids=[first_id, second_id],
        cache=cache,
        settings=settings,
        now_ms=NOW,
        enqueue=Recorder(),
    )
    delivered = f"msg_{first_id}_{sub_id}"
    deliveries.claim(redis_client, ids=[delivered], now_ms=NOW, lease_ms=1000)
    deliveries.finish(
        redis_client,
        results=[Finish(delivered, DeliveryState.DELIVERED)],
        now_ms=NOW,
        ttl_s=0,
    )
    enqueue = Recorder()
    # when
    result = fanout.fan_out(
        redis_client,
        event_ids=[first_id, second_id],
        cache=cache,
        settings=settings,
        now_ms=NOW + 1,
        enqueue=enqueue,
    )
    # then
    assert enqueue.ids == result.delivery_ids == [f"msg_{second_id}_{sub_id}"]
    assert redis_client.zcard(keys.subscription_deliveries(sub_id)) == 2


def test_each_event_fanned_out_makes_one_activity_line(
    redis_client: Redis, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """One line per event, as recorded, with how many subscriptions want it; none per delivery."""
    # given
    subscribe(redis_client)
    subscribe(redis_client)
    checkout = [
        {"effect": "allow", "resources": ["proj/*:env/*:flag/checkout.*"], "actions": ["*"]}
    ]
    subscribe(redis_client, statements=checkout)
    [in_production] = record(redis_client, "checkout.v2", environment="production")
    [created] = record(redis_client, "new.flag")
    # when
    with caplog.at_level(logging.DEBUG, logger="relay.activity.events"):
        fanout.fan_out(
            redis_client,
            event_ids=[created, in_production],
            cache=cache_for(settings),
            settings=settings,
            now_ms=NOW,
            enqueue=Recorder(),
        )
    # then
    assert [r.getMessage() for r in caplog.records] == [
        f"event {in_production} recorded: feature-environment-enabled, flag checkout.v2, "
        "default/production, by test: 3 subscriptions want it",
        f"event {created} recorded: feature-created, flag new.flag, project default, "
        "by test: 2 subscriptions want it",
    ]
    assert {r.levelno for r in caplog.records} == {activity_level()}


def test_events_gone_from_the_store_are_cleared_from_the_outbox(
    redis_client: Redis, settings: Settings
) -> None:
    """An outbox entry whose event was trimmed creates nothing and does not stay stuck."""
    # given
    subscribe(redis_client)
    redis_client.zadd(keys.OUTBOX, {"404": NOW})
    # when
    result = fanout.fan_out(
        redis_client,
        event_ids=[404],
        cache=cache_for(settings),
        settings=settings,
        now_ms=NOW,
        enqueue=Recorder(),
    )
    # then
    assert result.delivery_ids == [] and redis_client.zcard(keys.OUTBOX) == 0


def test_the_cache_rebuilds_only_when_the_version_moves(
    redis_client: Redis, settings: Settings
) -> None:
    """Same version: same snapshot; any subscription change: a new one that includes it."""
    # given
    cache = cache_for(settings)
    first_id = subscribe(redis_client)
    before = cache.get(redis_client)
    same = cache.get(redis_client)
    # when
    second_id = subscribe(redis_client)
    subscriptions.turn_off(redis_client, sub_id=first_id, reason="test")
    after = cache.get(redis_client)
    # then
    assert same is before and cache.builds == 2
    assert set(after.records) == {first_id, second_id}
    [event_id] = record(redis_client, "x")
    [event] = events.get_events(redis_client, ids=[event_id])
    assert event is not None and after.index.match(map_event(event)) == {second_id}


def test_the_sweep_fans_out_events_whose_fanout_was_lost(
    redis_client: Redis, settings: Settings
) -> None:
    """Outbox entries older than the grace period are fanned out; fresh ones are left alone."""
    # given
    sub_id = subscribe(redis_client)
    stale, fresh = record(redis_client, "stale", "fresh")
    redis_client.zadd(keys.OUTBOX, {str(stale): 0})  # recorded long ago, never fanned out
    enqueue = Recorder()
    # when
    counts = pump.sweep(redis_client, settings=settings, cache=cache_for(settings), enqueue=enqueue)
    # then
    assert counts["outbox"] == 1 and enqueue.ids == [f"msg_{stale}_{sub_id}"]
    assert redis_client.zrange(keys.OUTBOX, 0, -1) == [str(fresh)]


def test_the_pump_enqueues_every_due_delivery_and_only_those(
    redis_client: Redis, settings: Settings
) -> None:
    """Deliveries whose time has come are enqueued; one scheduled later keeps waiting."""
    # given
    sub_id = subscribe(redis_client)
    ids = record(redis_client, *(f"f{n}" for n in range(120)))
    long_ago = int(time.time() * 1000) - 3_600_000  # their fan-out's enqueue was lost
    fanout.fan_out(
        redis_client,
        event_ids=ids,
        cache=cache_for(settings),
        settings=settings,
        now_ms=long_ago,
        enqueue=Recorder(),
    )
    later = f"msg_{ids[0]}_{sub_id}"
    redis_client.zadd(keys.DUE, {later: 2**50})
    enqueue = Recorder()
    # when
    cache = cache_for(settings)
    total = pump.pump(redis_client, settings=settings, enqueue=enqueue, cache=cache)
    # then
    assert total == 119 and later not in enqueue.ids
    assert len(set(enqueue.ids)) == 119
    assert pump.pump(redis_client, settings=settings, enqueue=Recorder(), cache=cache) == 0


def test_a_fanout_attempts_the_first_deliveries_itself_and_enqueues_the_rest(
    redis_client: Redis, settings: Settings
) -> None:
    subs = [subscribe(redis_client) for _ in range(3)]
    ids = record(redis_client, *(f"flag-{n}" for n in range(40)))  # 40 x 3 = 120 deliveries
    enqueued = Recorder()
    attempted: list[list[str]] = []

    def deliver(delivery_ids: list[str]) -> None:
        # the events left the outbox first: a sweep now finds nothing to fan out again
        assert redis_client.zcard(keys.OUTBOX) == 0
        attempted.append(delivery_ids)

    result = fanout.fan_out_and_deliver(
        redis_client,
        event_ids=ids,
        cache=cache_for(settings),
        settings=settings,
        now_ms=NOW,
        deliver=deliver,
        enqueue=enqueued,
        direct=100,
    )
    assert len(result.delivery_ids) == 120 and len(subs) == 3
    assert attempted == [result.delivery_ids[:100]]
    assert enqueued.batches == [result.delivery_ids[100:]]


def test_a_small_fanout_enqueues_nothing(redis_client: Redis, settings: Settings) -> None:
    subscribe(redis_client)
    enqueued, attempted = Recorder(), Recorder()
    result = fanout.fan_out_and_deliver(
        redis_client,
        event_ids=record(redis_client, "one", "two"),
        cache=cache_for(settings),
        settings=settings,
        now_ms=NOW,
        deliver=attempted,
        enqueue=enqueued,
    )
    assert attempted.batches == [result.delivery_ids] and len(result.delivery_ids) == 2
    assert enqueued.batches == []


def test_the_pump_lets_subscriptions_take_turns() -> None:
    """One subscription's many due deliveries come after one of each of the others'."""
    ids = ["a1", "a2", "a3", "a4", "b1", "c1", "c2"]
    subs = {i: i[0] for i in ids}
    assert pump.take_turns(ids, subs) == ["a1", "b1", "c1", "a2", "c2", "a3", "a4"]
