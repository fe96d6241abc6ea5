"""Replays and test sends: new deliveries an operator asks for, created by the API.

A replay re-sends the recorded events of a time range that the subscription's policy
includes, as new deliveries (ids with a replay suffix, so receivers that dedupe on
`webhook-id` see them as new messages). A test send is one delivery of a synthetic event.
The API creates them and enqueues them by name; workers attempt them like any other.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator, Sequence

from policies import map_event, matches, parse_statements
from relay.errors import FieldProblem, InvalidRequestError
from relay.settings import Settings
from relay.store import deliveries, events
from relay.store.client import Redis
from relay.store.deliveries import DeliveryKind, NewDelivery
from relay.store.subscriptions import SubscriptionRecord

MAX_REPLAY_EVENTS = 10_000  # recorded events one replay may look at
_READ_CHUNK = 500


def replay(
    client: Redis,
    *,
    record: SubscriptionRecord,
    start_ms: int,
    end_ms: int,
    settings: Settings,
    now_ms: int,
) -> list[str]:
    """Create a new delivery for each event in [start, end] the policy includes; their ids."""
    ids = events.event_ids_between(client, start_ms=start_ms, end_ms=end_ms)
    if len(ids) > MAX_REPLAY_EVENTS:
        raise InvalidRequestError(
            f"the range holds {len(ids)} events; replay at most {MAX_REPLAY_EVENTS} at once",
            [FieldProblem("to", "narrow the range")],
        )
    statements = parse_statements(record.statements)
    tag = f"{now_ms:x}{secrets.token_hex(3)}"
    wanted: list[NewDelivery] = []
    for chunk in _chunks(ids):
        for event_id, event in zip(chunk, events.get_events(client, ids=chunk), strict=True):
            if event is None or not matches(
                statements, map_event(event), critical_environments=settings.critical_set
            ):
                continue
            delivery_id = deliveries.event_delivery_id(
                event_id=event_id, sub_id=record.id, replay=tag
            )
            wanted.append(NewDelivery(delivery_id, DeliveryKind.REPLAY, record.id, event_id))
    return deliveries.create_deliveries(
        client, deliveries=wanted, now_ms=now_ms, due_at_ms=_due_at(settings, now_ms)
    )


def create_test_delivery(
    client: Redis, *, record: SubscriptionRecord, settings: Settings, now_ms: int
) -> str:
    """A delivery of a test event to the subscription (on or off); its id."""
    delivery_id = f"msg_test_{record.id}_{now_ms:x}{secrets.token_hex(3)}"
    deliveries.create_deliveries(
        client,
        deliveries=[NewDelivery(delivery_id, DeliveryKind.TEST, record.id, None)],
        now_ms=now_ms,
        due_at_ms=_due_at(settings, now_ms),
    )
    return delivery_id


def _due_at(settings: Settings, now_ms: int) -> int:
    # enqueued at once; the pump takes it after a lease only if that task is lost
    return now_ms + int(settings.delivery_lease * 1000)


def _chunks(ids: Sequence[int]) -> Iterator[Sequence[int]]:
    for start in range(0, len(ids), _READ_CHUNK):
        yield ids[start : start + _READ_CHUNK]
