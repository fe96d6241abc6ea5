"""Pump and sweep: put due deliveries back on the queue, heal what crashes left behind.

The pump runs every second on the beat schedule: deliveries whose attempt time has come
(retries, and deliveries whose enqueue or worker was lost) go onto the queue in batches.
Each one taken is due again one lease later unless a worker claims it, so a lost task
message delays a delivery by at most a lease, and never loses it.

The sweep runs every few seconds: it fans out events left in the outbox (a crash between
recording and enqueueing the fan-out), forgets ended leases, and trims old dead letters.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

from relay.settings import Settings
from relay.store import deliveries
from relay.store.client import Redis
from workers import fanout
from workers.snapshot import SubscriptionCache

log = logging.getLogger(__name__)

PUMP_TAKE = 1000  # deliveries taken from the due set per round
PUMP_BUDGET_S = 0.8  # a pump run stops before the next beat


def pump(
    client: Redis,
    *,
    settings: Settings,
    enqueue: Callable[[Sequence[str]], None],
    clock: Callable[[], float] = time.time,
) -> int:
    """Enqueue every due delivery (in batches); how many were enqueued."""
    started = clock()
    total = 0
    while clock() - started < PUMP_BUDGET_S:
        ids = deliveries.take_due(
            client,
            now_ms=int(clock() * 1000),
            requeue_ms=int(settings.delivery_lease * 1000),
            limit=PUMP_TAKE,
        )
        if ids:
            enqueue(ids)
            total += len(ids)
        if len(ids) < PUMP_TAKE:
            break
    if total:
        log.debug("pump: %d due deliveries enqueued", total)  # every second under retries
    return total


def sweep(
    client: Redis,
    *,
    settings: Settings,
    cache: SubscriptionCache,
    enqueue: Callable[[Sequence[str]], None],
    clock: Callable[[], float] = time.time,
) -> dict[str, int]:
    """Re-fan-out stale outbox events, drop ended leases, trim dead letters; counts."""
    now_ms = int(clock() * 1000)
    retention_ms = int(settings.retention_days * 86_400_000)
    return {
        "outbox": fanout.sweep_outbox(
            client, cache=cache, settings=settings, now_ms=now_ms, enqueue=enqueue
        ),
        "claims": deliveries.drop_expired_claims(client, now_ms=now_ms),
        "dead": deliveries.trim_dead(client, older_than_ms=now_ms - retention_ms),
    }
