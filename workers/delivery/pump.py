"""Pump and sweep: put due deliveries back on the queue, heal what crashes left behind.

The pump runs every second on the beat schedule: deliveries whose attempt time has come
(retries, and deliveries whose enqueue or worker was lost) go onto the queue in batches.
Each one taken is due again one lease later unless a worker claims it, so a lost task
message delays a delivery by at most a lease, and never loses it.

The sweep runs every few seconds: it fans out events left in the outbox (a crash between
recording and enqueueing the fan-out), forgets ended leases, trims old dead letters, and
deletes the subscriptions of `relay listen` processes that died without deleting them.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence

from relay.settings import Settings
from relay.store import deliveries, listeners
from relay.store.client import Redis
from workers.delivery import batch, fanout
from workers.delivery.subscription_cache import SubscriptionCache

log = logging.getLogger(__name__)

PUMP_TAKE = 1000  # deliveries taken from the due set per round
PUMP_BUDGET_S = 0.8  # a pump run stops before the next beat


def pump(
    client: Redis,
    *,
    settings: Settings,
    enqueue: Callable[[Sequence[str]], None],
    cache: SubscriptionCache,
    clock: Callable[[], float] = time.time,
) -> int:
    """Enqueue every due delivery (in batches, subscriptions taking turns) and the waiting
    deliveries that may go now; how many were enqueued."""
    started = clock()
    total = wake(
        client, settings=settings, enqueue=enqueue, cache=cache, now_ms=int(started * 1000)
    )
    # ordered heads whose earlier events' fan-out ended without releasing them (a lost
    # fan-out the sweep healed): due now, taken below
    deliveries.release_fanned_out(client, now_ms=int(started * 1000))
    while clock() - started < PUMP_BUDGET_S:
        ids = deliveries.take_due(
            client,
            now_ms=int(clock() * 1000),
            requeue_ms=int(settings.delivery_lease * 1000),
            limit=PUMP_TAKE,
        )
        if ids:
            # the subscription named in each id: no Redis read (ids naming none share a turn)
            named = {delivery_id: deliveries.subscription_in_id(delivery_id) for delivery_id in ids}
            enqueue(take_turns(ids, named))
            total += len(ids)
        if len(ids) < PUMP_TAKE:
            break
    if total:
        log.debug("pump: %d due deliveries enqueued", total)  # every second under retries
    return total


def take_turns(ids: Sequence[str], subs: Mapping[str, str]) -> list[str]:
    """`ids` with their subscriptions taking turns (one of each, then a second of each...):
    one subscription's hundreds of due deliveries fill the batches only after the others'."""
    turns: dict[str, deque[str]] = {}
    for delivery_id in ids:
        turns.setdefault(subs.get(delivery_id, ""), deque()).append(delivery_id)
    ordered: list[str] = []
    while turns:
        for sub_id in list(turns):
            queue = turns[sub_id]
            ordered.append(queue.popleft())
            if not queue:
                del turns[sub_id]
    return ordered


def wake(
    client: Redis,
    *,
    settings: Settings,
    enqueue: Callable[[Sequence[str]], None],
    cache: SubscriptionCache,
    now_ms: int,
) -> int:
    """Enqueue the waiting deliveries that may go now (`deliveries.wake`); how many.

    The hand-off of freed slots (`deliver_batch`) moves them on without the pump; this
    catches slots freed by the end of a lease (a worker died), circuits due for a probe,
    and subscriptions turned off or deleted, whose deliveries the claim skips.
    """
    records = cache.get(client).records
    live = {sub_id for sub_id, record in records.items() if record.on}
    ids = deliveries.wake(client, now_ms=now_ms, limits=batch.limits_of(settings), live=live)
    if ids:
        enqueue(ids)
    return len(ids)


def sweep(
    client: Redis,
    *,
    settings: Settings,
    cache: SubscriptionCache,
    enqueue: Callable[[Sequence[str]], None],
    clock: Callable[[], float] = time.time,
) -> dict[str, int]:
    """Re-fan-out stale outbox events, drop ended leases, trim dead letters, remove
    abandoned listeners' subscriptions; counts."""
    now_ms = int(clock() * 1000)
    retention_ms = int(settings.retention_days * 86_400_000)
    abandoned = listeners.remove_abandoned(client, now_ms=now_ms)
    for sub_id in abandoned:
        log.info(
            "deleted subscription %s: its relay listen stopped without deleting it",
            sub_id,
            extra={"subscription_id": sub_id},
        )
    return {
        "listeners": len(abandoned),
        "outbox": fanout.sweep_outbox(
            client, cache=cache, settings=settings, now_ms=now_ms, enqueue=enqueue
        ),
        "claims": deliveries.drop_expired_claims(client, now_ms=now_ms),
        "dead": deliveries.trim_dead(client, older_than_ms=now_ms - retention_ms),
    }
