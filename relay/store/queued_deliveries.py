"""Deliveries of every subscription, a page at a time: the dead letters and the due queue.

Read-only views, like queues.py, over keys relay/store/deliveries.py writes:

- `relay:dead`, newest first: every dead delivery kept for the retention period, by when
  it died (the trim of `trim_dead` drops older ones; a record that expired first is
  skipped);
- `relay:due`, soonest first: every delivery still to deliver (pending, failed and
  waiting for its retry, or being attempted), by when its next attempt is due. Those a
  subscription holds back (no free send slot, open circuit) wait in its own set and are
  not listed.

A page starts after a cursor, the (score, id) of the last entry of the page before, so
entries added or removed meanwhile do not shift it. Each delivery is read with its last
attempt only, the record and the attempt in one round trip for the whole page.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from relay.store import keys
from relay.store.client import Redis, translate_errors
from relay.store.deliveries import Attempt, attempt_from


class Queue(StrEnum):
    DEAD = "dead"  # relay:dead, newest first
    DUE = "due"  # relay:due, soonest first


@dataclass(frozen=True)
class Position:
    """An entry's place in a queue: its score (ms) and its delivery id."""

    score: int
    delivery_id: str


@dataclass(frozen=True)
class QueuedDelivery:
    """A delivery as a queue lists it: its record's fields and its last attempt."""

    position: Position
    kind: str
    sub_id: str
    event_id: int | None
    state: str
    attempts: int
    created_at: int
    updated_at: int
    reason: str
    last_attempt: Attempt | None


@dataclass(frozen=True)
class Page:
    """Deliveries of a queue, and where the next page starts (None: this one is the last)."""

    items: list[QueuedDelivery]
    next: Position | None


_KEYS = {Queue.DEAD: keys.DEAD, Queue.DUE: keys.DUE}


def queue_length(client: Redis, *, queue: Queue) -> int:
    """How many deliveries the queue holds."""
    with translate_errors():
        return int(client.zcard(_KEYS[queue]))


def queue_page(client: Redis, *, queue: Queue, limit: int, after: Position | None = None) -> Page:
    """Up to `limit` deliveries of the queue, in its order, after `after` (from the start
    when None); fewer when records expired."""
    positions = _positions(client, queue, limit, after)
    with translate_errors():
        pipe = client.pipeline(transaction=False)
        for position in positions:
            pipe.hgetall(keys.delivery(position.delivery_id))
            pipe.lindex(keys.delivery_attempts(position.delivery_id), -1)
        replies = pipe.execute() if positions else []
    found = []
    for index, position in enumerate(positions):
        fields, attempt = replies[2 * index], replies[2 * index + 1]
        if fields:
            found.append(_queued(position, fields, attempt))
    return Page(found, positions[-1] if len(positions) == limit else None)


def _positions(client: Redis, queue: Queue, limit: int, after: Position | None) -> list[Position]:
    """Entries after `after`. Entries of one score come in the order of their ids (reversed
    for the newest first): those of the cursor's score up to its id were listed already."""
    newest_first = queue is Queue.DEAD
    chunk = max(limit, 100)
    found: list[Position] = []
    offset = 0
    while len(found) < limit:
        batch = _range(client, _KEYS[queue], newest_first, after, offset, chunk)
        for member, score in batch:
            position = Position(int(score), member)
            if after is None or not _listed(position, after, newest_first=newest_first):
                found.append(position)
        if len(batch) < chunk:
            break
        offset += chunk
    return found[:limit]


def _range(
    client: Redis,
    key: str,
    newest_first: bool,
    after: Position | None,
    offset: int,
    count: int,
) -> list[tuple[str, float]]:
    with translate_errors():
        if newest_first:
            top = after.score if after else "+inf"
            return client.zrevrangebyscore(  # type: ignore[return-value]
                key, top, "-inf", start=offset, num=count, withscores=True
            )
        bottom = after.score if after else "-inf"
        return client.zrangebyscore(  # type: ignore[return-value]
            key, bottom, "+inf", start=offset, num=count, withscores=True
        )


def _listed(position: Position, after: Position, *, newest_first: bool) -> bool:
    """Whether `position`, of the cursor's score or past it, was on an earlier page."""
    if position.score != after.score:
        return False
    if newest_first:
        return position.delivery_id >= after.delivery_id
    return position.delivery_id <= after.delivery_id


def _queued(position: Position, fields: dict[str, str], attempt: str | None) -> QueuedDelivery:
    event = fields.get("event")
    return QueuedDelivery(
        position=position,
        kind=fields.get("kind", "event"),
        sub_id=fields.get("sub", ""),
        event_id=int(event) if event else None,
        state=fields.get("state", "pending"),
        attempts=int(fields.get("attempts", 0)),
        created_at=int(fields.get("created", 0)),
        updated_at=int(fields.get("updated", 0)),
        reason=fields.get("reason", ""),
        last_attempt=attempt_from(attempt) if attempt else None,
    )
