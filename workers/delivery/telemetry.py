"""What the workers tell operators: metrics and log lines for fan-outs and delivery attempts.

Called by workers/delivery/fanout.py and workers/delivery/batch.py once their Redis work is done.
Observing never fails the work it observes: a Redis error here costs a data point only.
Log lines carry the ids they concern (`event_id`, `delivery_id`, `subscription_id`) as
fields, so a JSON log can be searched for one event's or one subscription's story.

An event fanned out and a delivery's outcome are activity lines (relay/observability/logs.py),
worded by workers/delivery/activity.py: a person watching `relay up` on a terminal sees
each; a JSON log has the routine ones (an event, a delivery delivered) at DEBUG only.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from typing import Any, Final

from relay.clock import now_ms, rfc3339_ms
from relay.errors import StoreError
from relay.observability import metrics
from relay.observability.logs import ACTIVITY, activity_level
from relay.store import queues
from relay.store.client import Redis
from relay.store.deliveries import DeliveryKind, DeliveryState, NewDelivery
from workers.delivery import activity
from workers.delivery.attempt import Done

log = logging.getLogger(__name__)
events_log = logging.getLogger(f"{ACTIVITY}.events")
deliveries_log = logging.getLogger(f"{ACTIVITY}.deliveries")

OUTCOMES: Final = {
    DeliveryState.DELIVERED: "delivered",
    DeliveryState.FAILED: "retry",
    DeliveryState.DEAD: "dead",
    DeliveryState.GONE: "gone",
    DeliveryState.SKIPPED: "skipped",
}
# retries are routine (a receiver had a bad second); dead and gone need a person; a
# delivery delivered logs at `activity_level()`
_LEVELS: Final = {
    "retry": logging.INFO,
    "skipped": logging.INFO,
    "dead": logging.WARNING,
    "gone": logging.WARNING,
}


def fanning_out(
    recorded: Sequence[tuple[int, Mapping[str, Any] | None]], planned: Sequence[NewDelivery]
) -> None:
    """One activity line per event being fanned out: what it is, how many subscriptions
    want it. Costs one level check per batch when activity lines are off."""
    level = activity_level()
    if not events_log.isEnabledFor(level):
        return
    wanted = Counter(delivery.event_id for delivery in planned)
    for event_id, event in recorded:
        count = wanted[event_id]
        line = activity.event_line(event_id, event, wanted=count)
        events_log.log(level, line, extra={"event_id": event_id, "subscriptions": count})


def fanned_out(client: Redis, *, event_ids: Sequence[int], delivery_ids: Sequence[str]) -> None:
    """Observe the fan-out lag of events about to leave the outbox (call before removing)."""
    try:
        enqueued = queues.outbox_enqueued_at(client, ids=event_ids)
    except StoreError as exc:
        log.debug("fan-out lag not observed: %s", exc)
        return
    metrics.observe_fanout_lag(enqueued.values(), now_ms=now_ms())
    log.debug(
        "fanned out %d events into %d deliveries",
        len(event_ids),
        len(delivery_ids),
        extra={"event_ids": list(event_ids), "delivery_ids": list(delivery_ids)},
    )


def attempted(
    done: Sequence[Done],
    *,
    changed: Collection[str],
    events: Mapping[int, Mapping[str, Any]],
    now_ms: int,
) -> None:
    """Count the batch's attempts and outcomes and log each; `changed` = ids whose state moved.

    A delivery another worker had already finished only gained an attempt: its outcome
    was counted by that worker.
    """
    moved = set(changed)
    for item in done:
        if item.result is not None:
            metrics.count_attempt(item.result.status_code)
        delivery = item.prepared.delivery
        if delivery.id not in moved:
            continue
        outcome = OUTCOMES.get(item.finish.state)
        if outcome is None:
            continue
        metrics.count_delivery(outcome, kind=delivery.kind.value)
        if outcome == "delivered" and delivery.kind is DeliveryKind.EVENT:
            event = events.get(delivery.event_id) if delivery.event_id is not None else None
            created = _created_ms(event)
            if created is not None:
                metrics.observe_delivery_latency((now_ms - created) / 1000)
        _log(item, outcome, now_ms=now_ms)


def _log(item: Done, outcome: str, *, now_ms: int) -> None:
    level = activity_level() if outcome == "delivered" else _LEVELS[outcome]
    if not deliveries_log.isEnabledFor(level):
        return
    delivery, finish, result = item.prepared.delivery, item.finish, item.result
    fields: dict[str, Any] = {
        "delivery_id": delivery.id,
        "subscription_id": delivery.sub_id,
        "event_id": delivery.event_id,
        "outcome": outcome,
        "attempt": delivery.attempts + (1 if result is not None else 0),
    }
    if result is not None:
        fields["status_code"] = result.status_code
    if finish.next_attempt_at is not None:
        fields["next_attempt_at"] = finish.next_attempt_at
    line = activity.delivery_line(item, outcome, now_ms=now_ms)
    deliveries_log.log(level, line, extra=fields)


def _created_ms(event: Mapping[str, Any] | None) -> int | None:
    created = event.get("createdAt") if event is not None else None
    if not isinstance(created, str):
        return None
    try:
        return rfc3339_ms(created)
    except ValueError:
        return None
