"""What a crash can leave in Redis, and the pump and sweep bringing every delivery back.

A worker lost mid-batch, or a Redis restarted from an AOF that lacks its last writes
(`appendfsync everysec`: a suffix of the writes, each Lua script whole or absent), leaves
deliveries claimed by nobody, slots held by nobody, waiting deliveries nobody hands a
slot, or fanned-out events still in the outbox. Each state is built here with the store's
own functions, then one pump (or sweep) run one lease later must enqueue every delivery.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from relay import clock
from relay.settings import Settings
from relay.store import deliveries, events, keys
from relay.store.client import Redis
from relay.store.deliveries import DeliveryKind, DeliveryState, Finish, NewDelivery
from tests import support
from workers.delivery import batch, fanout
from workers.delivery import pump as pumping
from workers.delivery.subscription_cache import SubscriptionCache

LEASE_S = 3.0


@pytest.fixture
def config(settings: Settings) -> Settings:
    """Two send slots per subscription and a short lease."""
    return settings.model_copy(update={"subscription_max_in_flight": 2, "delivery_lease": LEASE_S})


def created(client: Redis, sub_id: str, count: int, *, now_ms: int) -> list[str]:
    """`count` recorded events and their pending deliveries to `sub_id`, as a fan-out makes them."""
    made = [
        NewDelivery(
            deliveries.event_delivery_id(event_id=event_id, sub_id=sub_id),
            DeliveryKind.EVENT,
            sub_id,
            event_id,
        )
        for event_id in (support.record_event(client, featureName=f"f{i}") for i in range(count))
    ]
    due_at = now_ms + int(LEASE_S * 1000)
    return deliveries.create_deliveries(client, deliveries=made, now_ms=now_ms, due_at_ms=due_at)


def pump_at(client: Redis, config: Settings, at_ms: int) -> list[str]:
    """One pump run at `at_ms`; the ids it enqueued."""
    enqueued: list[str] = []

    def enqueue(ids: Sequence[str]) -> None:
        enqueued.extend(ids)

    cache = SubscriptionCache(critical_environments=config.critical_set)
    pumping.pump(client, settings=config, enqueue=enqueue, cache=cache, clock=lambda: at_ms / 1000)
    return enqueued


def test_deliveries_whose_enqueue_was_lost_are_pumped_after_a_lease(
    redis_client: Redis, config: Settings
) -> None:
    """Created, never enqueued (the fan-out's own batch died with Redis): due after a lease."""
    # given
    sub_id = support.subscribe(redis_client)
    now = clock.now_ms()
    ids = created(redis_client, sub_id, 3, now_ms=now)
    # when
    enqueued = pump_at(redis_client, config, now + int(LEASE_S * 1000) + 1)
    # then
    assert sorted(enqueued) == sorted(ids)


def test_slots_and_waiting_deliveries_of_a_lost_worker_come_back_after_a_lease(
    redis_client: Redis, config: Settings
) -> None:
    """Two claimed (every slot) and two waiting, the worker gone: all four are pumped."""
    # given
    sub_id = support.subscribe(redis_client)
    now = clock.now_ms()
    ids = created(redis_client, sub_id, 4, now_ms=now)
    limits = batch.limits_of(config)
    claimed = deliveries.claim(
        redis_client, ids=ids, now_ms=now, lease_ms=limits.lease_ms, limits=limits
    )
    waiting = redis_client.zrange(keys.subscription_waiting(sub_id), 0, -1)
    assert len(claimed) == 2 and len(waiting) == 2
    # when: no finish ever comes
    enqueued = pump_at(redis_client, config, now + limits.lease_ms + 1)
    # then
    assert sorted(enqueued) == sorted(ids)


def test_a_lost_hand_off_of_a_freed_slot_is_pumped_and_claimed_after_a_lease(
    redis_client: Redis, config: Settings
) -> None:
    """A slot freed and handed to a waiting delivery whose batch never ran: it is pumped
    one lease later and its claim is admitted, the subscription's slots full or not."""
    # given: three deliveries, two slots: one waits, then a finish hands it the freed slot
    sub_id = support.subscribe(redis_client)
    now = clock.now_ms()
    first, second, third = created(redis_client, sub_id, 3, now_ms=now)
    limits = batch.limits_of(config)
    deliveries.claim(
        redis_client,
        ids=[first, second, third],
        now_ms=now,
        lease_ms=limits.lease_ms,
        limits=limits,
    )
    done = Finish(first, DeliveryState.DELIVERED, sub_id=sub_id)
    settled = deliveries.settle(
        redis_client, results=[done], now_ms=now + 10, ttl_s=60, limits=limits
    )
    assert settled.promoted == [third]
    # when: the hand-off's batch is lost; the pump runs once the hand-off's lease ended
    later = now + 10 + limits.lease_ms + 1
    enqueued = pump_at(redis_client, config, later)
    claimed = deliveries.claim(
        redis_client, ids=enqueued, now_ms=later, lease_ms=limits.lease_ms, limits=limits
    )
    # then
    assert sorted(enqueued) == sorted([second, third])
    assert sorted(d.id for d in claimed) == sorted([second, third])


def test_a_fan_out_whose_outbox_removal_was_lost_enqueues_its_pending_deliveries(
    redis_client: Redis, config: Settings
) -> None:
    """Deliveries created, the outbox entry still there (its removal lost): the sweep's
    second fan-out creates nothing new and enqueues the pending ones."""
    # given
    sub_id = support.subscribe(redis_client)
    event_id = support.record_event(redis_client)
    now = clock.now_ms()
    cache = SubscriptionCache(critical_environments=config.critical_set)
    first = fanout.fan_out(
        redis_client,
        event_ids=[event_id],
        cache=cache,
        settings=config,
        now_ms=now,
        enqueue=lambda ids: None,
    )
    stale = now - fanout.OUTBOX_GRACE_MS - 1
    redis_client.zadd(keys.OUTBOX, {str(event_id): stale})  # the removal never reached the AOF
    # when
    enqueued: list[str] = []
    counts = pumping.sweep(redis_client, settings=config, cache=cache, enqueue=enqueued.extend)
    # then
    assert counts["outbox"] == 1
    assert enqueued == first.delivery_ids == [f"msg_{event_id}_{sub_id}"]
    assert events.outbox_older_than(redis_client, age_ms=0) == []
