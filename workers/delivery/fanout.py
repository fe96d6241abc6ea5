"""Fan-out: recorded events to one delivery per (event, subscription that wants it).

Plain functions over a Redis client; `workers.tasks` wraps them in Celery tasks. A fan-out
can run twice for the same events (the sweep re-runs stale outbox entries, a task can be
redelivered): delivery ids are deterministic, so the second run creates nothing new.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from policies import map_event
from relay.observability.logs import ACTIVITY
from relay.settings import Settings
from relay.store import deliveries, events
from relay.store.client import Redis
from relay.store.deliveries import DeliveryKind, NewDelivery
from relay.store.subscriptions import ORDER_FLAG, ORDER_NONE, ORDER_SUBSCRIPTION
from workers.delivery import operational, telemetry
from workers.delivery.subscription_cache import Snapshot, SubscriptionCache

# the sweep's line is an activity line: readable on a terminal, INFO everywhere
log = logging.getLogger(f"{ACTIVITY}.events")

# events older than this in the outbox lost their fan-out task (crash between record and enqueue)
OUTBOX_GRACE_MS = 5_000
SWEEP_BATCH = 500  # events fanned out per sweep round

Enqueue = Callable[[Sequence[str]], None]


@dataclass(frozen=True)
class FanoutResult:
    """Deliveries to attempt now, and the events handled (found or not)."""

    delivery_ids: list[str]
    event_ids: list[int]


def plan(
    snapshot: Snapshot, recorded: Sequence[tuple[int, dict[str, object] | None]]
) -> list[NewDelivery]:
    """One new delivery per (event, subscription that is on and whose policy includes it)."""
    planned: list[NewDelivery] = []
    for event_id, event in recorded:
        if event is None:
            continue  # trimmed by retention before it was fanned out: nothing to send
        about = operational.subject_of(event)  # never told to the subscription it is about
        ours = operational.is_operational(event)
        for sub_id in sorted(snapshot.index.match(map_event(event))):
            record = snapshot.records.get(sub_id)
            if sub_id == about or (ours and not (record and record.statements)):
                # relay's own events go only to policies that ask for them: a subscription
                # without statements (everything) keeps getting flag audit events only
                continue
            planned.append(
                NewDelivery(
                    id=deliveries.event_delivery_id(event_id=event_id, sub_id=sub_id),
                    kind=DeliveryKind.EVENT,
                    sub_id=sub_id,
                    event_id=event_id,
                    order_key=order_key(event, record.ordering if record else ORDER_NONE),
                )
            )
    return planned


def order_key(event: Mapping[str, object], ordering: str) -> str:
    """The key whose deliveries go one at a time under `ordering`: the flag within its
    project (`flag`; a project's events without a flag share the project's key), the whole
    subscription (`subscription`), none (`none`)."""
    if ordering == ORDER_SUBSCRIPTION:
        return "subscription"
    if ordering != ORDER_FLAG:
        return ""
    project = event.get("project") if isinstance(event.get("project"), str) else ""
    flag = event.get("featureName")
    if isinstance(flag, str) and flag:
        return f"flag:{project}/{flag}"
    return f"project:{project}"


def fan_out(
    client: Redis,
    *,
    event_ids: Sequence[int],
    cache: SubscriptionCache,
    settings: Settings,
    now_ms: int,
    enqueue: Enqueue,
) -> FanoutResult:
    """Create the events' deliveries, enqueue them, then clear the events' outbox entries."""
    ids = sorted(set(event_ids))
    snapshot = cache.get(client)
    recorded = list(zip(ids, events.get_events(client, ids=ids), strict=True))
    planned = plan(snapshot, recorded)
    created = deliveries.create_deliveries(
        client,
        deliveries=planned,
        now_ms=now_ms,
        due_at_ms=now_ms + int(settings.delivery_lease * 1000),
    )
    # before the enqueue: a person reads an event's line before its deliveries' lines
    telemetry.fanning_out(recorded, planned)
    enqueue(created)
    telemetry.fanned_out(client, event_ids=ids, delivery_ids=created)
    # only now: the deliveries are stored, and due again after a lease if the enqueue was lost
    events.remove_from_outbox(client, ids=ids)
    # ordered heads that waited for these events' fan-out may go now
    enqueue(deliveries.release_fanned_out(client, now_ms=now_ms))
    return FanoutResult(delivery_ids=created, event_ids=ids)


# deliveries a fanout task attempts itself: the first attempt of a few events' deliveries
# skips a deliver task's queue hop (and its Celery message); beyond these, deliver tasks
# spread the work over every worker
DIRECT_DELIVERIES = 100


def fan_out_and_deliver(
    client: Redis,
    *,
    event_ids: Sequence[int],
    cache: SubscriptionCache,
    settings: Settings,
    now_ms: int,
    deliver: Callable[[list[str]], object],
    enqueue: Enqueue,
    direct: int = DIRECT_DELIVERIES,
) -> FanoutResult:
    """`fan_out`, then attempt the first `direct` deliveries here; the rest are enqueued."""
    mine: list[str] = []

    def split(ids: Sequence[str]) -> None:
        mine.extend(ids[:direct])
        if len(ids) > direct:
            enqueue(ids[direct:])

    result = fan_out(
        client, event_ids=event_ids, cache=cache, settings=settings, now_ms=now_ms, enqueue=split
    )
    # only after fan_out took the events out of the outbox: the deliveries are stored and
    # due again after a lease, so a worker lost while sending costs a delay, not a delivery
    if mine:
        deliver(mine)
    return result


def sweep_outbox(
    client: Redis,
    *,
    cache: SubscriptionCache,
    settings: Settings,
    now_ms: int,
    enqueue: Enqueue,
    max_rounds: int = 20,
) -> int:
    """Fan out events whose fan-out task was lost; how many events were handled."""
    handled = 0
    for _ in range(max_rounds):
        stale = events.outbox_older_than(client, age_ms=OUTBOX_GRACE_MS, limit=SWEEP_BATCH)
        if not stale:
            break
        log.info(
            "sweep: fanning out %d event(s) that waited over %d s for their fan-out "
            "(a lost task, or busy workers)",
            len(stale),
            OUTBOX_GRACE_MS // 1000,
            extra={"event_ids": stale},
        )
        fan_out(
            client, event_ids=stale, cache=cache, settings=settings, now_ms=now_ms, enqueue=enqueue
        )
        handled += len(stale)
    return handled
