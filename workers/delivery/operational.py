"""relay's own events about its subscriptions and deliveries, in its own event stream.

A subscription turned off by relay, starting or ending a run of failures, paused by its
receiver, and a delivery given up: each is recorded as an Unleash-shaped event with
source `relay`, type the happening (`subscription-disabled`, `subscription-failing`,
`subscription-recovered`, `subscription-paused`, `delivery-dead`) and
`data.subscription` = `<integration key>/<subscription id>`. Policies see the resource
`integration/<integration key>/<id>` and the type as the action (policies/catalog.py), so
an operator subscribes with an ordinary policy. They are fanned out like any event, shown
by the events APIs, counted in `relay_operational_events_total`.

Two rules keep them from feeding on themselves: an event about a subscription is never
delivered to that subscription (workers/delivery/fanout.py), and a delivery of an
operational event that dies makes no `delivery-dead` event (two subscriptions listening to
each other's dead letters would otherwise ping-pong forever).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from policies.catalog import RELAY_SOURCE
from relay.clock import rfc3339_of
from relay.observability.metrics import OPERATIONAL_EVENTS
from relay.store import events
from relay.store.client import Redis
from relay.store.subscriptions import SubscriptionRecord

SOURCE = RELAY_SOURCE
DISABLED = "subscription-disabled"
FAILING = "subscription-failing"
RECOVERED = "subscription-recovered"
PAUSED = "subscription-paused"
DELIVERY_DEAD = "delivery-dead"
TYPES = frozenset({DISABLED, FAILING, RECOVERED, PAUSED, DELIVERY_DEAD})


@dataclass(frozen=True)
class Notice:
    """Something relay has to say about one subscription."""

    type: str
    record: SubscriptionRecord
    details: dict[str, Any] = field(default_factory=dict)


def is_operational(event: Mapping[str, Any] | None) -> bool:
    """Whether `event` is one of relay's own."""
    return event is not None and event.get("type") in TYPES and event.get("source") == SOURCE


def subject_of(event: Mapping[str, Any]) -> str | None:
    """The subscription id an operational event is about (None for any other event)."""
    if not is_operational(event):
        return None
    data = event.get("data")
    subscription = data.get("subscriptionId") if isinstance(data, Mapping) else None
    return subscription if isinstance(subscription, str) else None


def record(client: Redis, notices: Sequence[Notice], *, now_ms: int) -> list[int]:
    """Record the notices as events (fanned out by the caller, or the sweep); their ids."""
    if not notices:
        return []
    documents = [_event(notice, now_ms=now_ms) for notice in notices]
    ids = events.record_events(client, events=documents, source=SOURCE)
    for notice in notices:
        OPERATIONAL_EVENTS.labels(type=notice.type).inc()
    return ids


def _event(notice: Notice, *, now_ms: int) -> dict[str, Any]:
    record = notice.record
    return {
        "type": notice.type,
        "createdBy": SOURCE,
        "createdAt": rfc3339_of(now_ms),
        "featureName": None,
        "project": None,
        "environment": None,
        "data": {
            "subscription": f"{record.integration_key}/{record.id}",
            "subscriptionId": record.id,
            "integrationKey": record.integration_key,
            "name": record.name,
            **notice.details,
        },
        "preData": None,
        "tags": [],
    }
