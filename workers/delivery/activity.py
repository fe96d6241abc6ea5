"""The sentences of activity lines: one per event fanned out, one per delivery outcome.

What a person watching `relay up` reads, e.g. `event 1 recorded: feature-environment-enabled,
flag checkout.v2, default/production, by alice@example.com: 1 subscription wants it` and
`event 1 delivered to "prod flags" (webhook 6014f7ee): HTTP 200 in 12 ms, attempt 1`.
workers/delivery/telemetry.py logs them. An event's fields are the producer's and a
subscription's name the writer's: both go through `printable`, so neither can forge a line.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from relay.observability.logs import printable
from relay.store.deliveries import DeliveryKind
from workers.delivery.attempt import Done

SHORT_ID = 8  # characters of a subscription id that name it in a line
REASON = 200  # characters of an error or a reason (they name hosts, addresses, templates)


def event_line(event_id: int, event: Mapping[str, Any] | None, *, wanted: int) -> str:
    """An event at its fan-out: what it is, and how many subscriptions want it."""
    if event is None:
        return f"event {event_id} was trimmed before its fan-out: nothing to send"
    return f"event {event_id} recorded: {describe(event)}: {_takers(wanted)}"


def _takers(wanted: int) -> str:
    if wanted == 0:
        return "no subscription wants it"
    return "1 subscription wants it" if wanted == 1 else f"{wanted} subscriptions want it"


def describe(event: Mapping[str, Any]) -> str:
    """`type, flag F, project/environment, by author`, of the parts the event has."""
    kind, flag, project, environment, author = (
        _text(event, name)
        for name in ("type", "featureName", "project", "environment", "createdBy")
    )
    parts = [kind or "an event of no type"]
    if flag:
        parts.append(f"flag {flag}")
    if project and environment:
        parts.append(f"{project}/{environment}")
    elif project or environment:
        parts.append(f"project {project}" if project else f"environment {environment}")
    if author:
        parts.append(f"by {author}")
    return ", ".join(parts)


def _text(event: Mapping[str, Any], name: str) -> str:
    value = event.get(name)
    return printable(value) if isinstance(value, str) else ""


def delivery_line(item: Done, outcome: str, *, now_ms: int) -> str:
    """A delivery's outcome: what was sent where, the attempt's answer, and what comes next."""
    delivery, result, finish = item.prepared.delivery, item.result, item.finish
    subject, target = _subject(item), _target(item)
    head, reason = f"{subject} to {target}: {outcome}", printable(finish.reason, limit=REASON)
    if result is None:  # decided without sending (skipped, or dead before an attempt)
        return f"{head}: {reason}" if reason else head
    attempt = delivery.attempts + 1
    if outcome == "delivered":
        took = f"HTTP {result.status_code} in {round(result.duration_ms)} ms"
        return f"{subject} delivered to {target}: {took}, attempt {attempt}"
    answer = printable(result.error, limit=REASON) if result.error else f"HTTP {result.status_code}"
    line = f"{head} after attempt {attempt}: {answer}"
    if finish.next_attempt_at is not None:
        return f"{line}; next in {duration(finish.next_attempt_at - now_ms)}"
    return f"{line} ({reason})" if reason and reason != answer else line


def _subject(item: Done) -> str:
    delivery = item.prepared.delivery
    if delivery.kind is DeliveryKind.TEST or delivery.event_id is None:
        return "test event"
    replay = " (replay)" if delivery.kind is DeliveryKind.REPLAY else ""
    return f"event {delivery.event_id}{replay}"


def _target(item: Done) -> str:
    record, short_id = item.prepared.record, item.prepared.delivery.sub_id[:SHORT_ID]
    if record is None:
        return f"subscription {short_id}"
    return f'"{printable(record.name)}" ({printable(record.integration_key)} {short_id})'


def duration(ms: int) -> str:
    """`45s`, `5m`, `1m 35s`, `2h 5m`: a wait as a person says it, to the second."""
    seconds = max(0, round(ms / 1000))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        minutes, seconds = divmod(seconds, 60)
        return f"{minutes}m {seconds}s" if seconds else f"{minutes}m"
    hours, minutes = divmod(seconds // 60, 60)
    return f"{hours}h {minutes}m" if minutes else f"{hours}h"
