"""What the workers tell operators: metrics and log lines for fan-outs and delivery attempts.

Called by workers/delivery/fanout.py and workers/delivery/batch.py once their Redis work is done.
Observing never fails the work it observes: a Redis error here costs a data point only.
Log lines carry the ids they concern (`event_id`, `delivery_id`, `subscription_id`) as
fields, so a JSON log can be searched for one event's or one subscription's story.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

from relay.clock import now_ms, rfc3339_ms
from relay.errors import StoreError
from relay.observability import metrics
from relay.store import queues
from relay.store.client import Redis
from relay.store.deliveries import DeliveryKind, DeliveryState

if TYPE_CHECKING:
    from workers.delivery.attempt import Done

log = logging.getLogger(__name__)

OUTCOMES: Final = {
    DeliveryState.DELIVERED: "delivered",
    DeliveryState.FAILED: "retry",
    DeliveryState.DEAD: "dead",
    DeliveryState.GONE: "gone",
    DeliveryState.SKIPPED: "skipped",
}
# retries are routine (a receiver had a bad second); dead and gone need a person
_LEVELS: Final = {
    "delivered": logging.DEBUG,
    "retry": logging.INFO,
    "skipped": logging.INFO,
    "dead": logging.WARNING,
    "gone": logging.WARNING,
}


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
        _log(item, outcome)


def _log(item: Done, outcome: str) -> None:
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
    detail = finish.reason or (result.error if result is not None and result.error else "")
    log.log(
        _LEVELS[outcome],
        "delivery %s: %s%s",
        delivery.id,
        outcome,
        f" ({detail})" if detail else "",
        extra=fields,
    )


def _created_ms(event: Mapping[str, Any] | None) -> int | None:
    created = event.get("createdAt") if event is not None else None
    if not isinstance(created, str):
        return None
    try:
        return rfc3339_ms(created)
    except ValueError:
        return None
