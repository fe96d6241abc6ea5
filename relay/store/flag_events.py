"""Queries over the flag-event indexes (written by relay/store/events.py).

`relay:events:pe:{project}:{env}` and `relay:events:pg:{project}` hold event ids scored
by createdAt ms. Redis orders a sorted set by (score, member bytes); a `Position` is that
pair, so a cursor is exact even when many events share a millisecond, and several
indexes merge into one order. Walks read pages with ZRANGEBYSCORE/ZREVRANGEBYSCORE and
LIMIT, re-seeking from the last score seen rather than paying for ever larger offsets.
"""

from __future__ import annotations

import heapq
import math
import re
from collections.abc import Iterator, Sequence
from typing import Any, Final, NamedTuple

from relay.store import keys, scripts
from relay.store.client import Redis, translate_errors
from relay.store.events import get_events

__all__ = [
    "Position",
    "count_between",
    "documents_mentioning",
    "documents_with",
    "flag_histories",
    "flag_positions",
    "index_keys",
    "load_events",
    "positions_between",
    "walk",
]

_CURSOR = re.compile(r"^(-?\d{1,16})\.(\d{1,19})$")
ENTRY_CHUNK: Final = 5000  # events checked per documents_mentioning.lua call: a few ms of Redis


class Position(NamedTuple):
    """An event's place in the flag-event order: createdAt ms, then its id as Redis orders it.

    A tuple, so sorting thousands of them compares in C.
    """

    time_ms: int
    member: str

    @property
    def event_id(self) -> int:
        return int(self.member)

    @property
    def cursor(self) -> str:
        return f"{self.time_ms}.{self.member}"

    @classmethod
    def from_cursor(cls, text: str) -> Position | None:
        """The position a cursor names, or None when it is not one of ours."""
        match = _CURSOR.match(text)
        return cls(int(match.group(1)), match.group(2)) if match else None


def index_keys(*, project: str, environment: str, include_global: bool) -> list[str]:
    """The indexes listing a project's flag events in an environment (global ones too)."""
    found = [keys.flag_events_in_env(project, environment)]
    return [*found, keys.global_flag_events(project)] if include_global else found


def count_between(client: Redis, *, index: Sequence[str], start_ms: int, stop_ms: int) -> int:
    """How many events the indexes hold with start_ms <= createdAt <= stop_ms."""
    with translate_errors():
        pipe = client.pipeline(transaction=False)
        for key in index:
            pipe.zcount(key, start_ms, stop_ms)
        return sum(int(n) for n in pipe.execute())


def walk(
    client: Redis,
    *,
    index: Sequence[str],
    start_ms: int,
    stop_ms: int,
    newest_first: bool,
    past: Position | None = None,
    batch: int = 256,
) -> Iterator[Position]:
    """Positions in the window, in order, strictly beyond `past` (the merge of the indexes)."""
    walks = [_walk_key(client, key, start_ms, stop_ms, newest_first, past, batch) for key in index]
    return heapq.merge(*walks, reverse=newest_first)


def positions_between(
    client: Redis, *, index: Sequence[str], start_ms: int, stop_ms: int
) -> list[Position]:
    """Every position in the window, oldest first."""
    with translate_errors():
        pipe = client.pipeline(transaction=False)
        for key in index:
            pipe.zrangebyscore(key, start_ms, stop_ms, withscores=True)
        found = [_positions(rows) for rows in pipe.execute()]
    return sorted(p for rows in found for p in rows)


def _walk_key(
    client: Redis,
    key: str,
    start_ms: int,
    stop_ms: int,
    newest_first: bool,
    past: Position | None,
    batch: int,
) -> Iterator[Position]:
    bound, skip = (stop_ms, 0) if newest_first else (start_ms, 0)
    if past is not None and (past.time_ms <= stop_ms if newest_first else past.time_ms >= start_ms):
        bound, skip = past.time_ms, _passed_ties(client, key, past, newest_first)
    limit = stop_ms if not newest_first else start_ms
    while True:
        rows = _range(client, key, bound, limit, newest_first, skip, batch)
        yield from rows
        if len(rows) < batch:
            return
        last = rows[-1].time_ms
        tail = sum(1 for row in rows if row.time_ms == last)
        skip = tail + (skip if last == bound else 0)
        bound = last


def _range(
    client: Redis, key: str, bound: int, limit: int, newest_first: bool, skip: int, batch: int
) -> list[Position]:
    with translate_errors():
        if newest_first:
            rows = client.zrevrangebyscore(
                key, bound, limit, start=skip, num=batch, withscores=True
            )
        else:
            rows = client.zrangebyscore(key, bound, limit, start=skip, num=batch, withscores=True)
    return _positions(rows)


def _passed_ties(client: Redis, key: str, past: Position, newest_first: bool) -> int:
    """How many members at `past`'s score come at or before it in the walk's order."""
    with translate_errors():
        members: list[str] = client.zrangebyscore(key, past.time_ms, past.time_ms)  # type: ignore[assignment]
    if newest_first:
        return sum(1 for member in members if member >= past.member)
    return sum(1 for member in members if member <= past.member)


def _positions(rows: Any) -> list[Position]:
    return [Position(int(score), str(member)) for member, score in rows]


def flag_positions(
    client: Redis,
    *,
    index: Sequence[str],
    flags: Sequence[str],
    start_ms: int | None,
    stop_ms: int | None,
) -> list[tuple[Position, str]]:
    """The window's positions of the flags' events, with their flag, oldest first.

    No `start_ms`/`stop_ms` means all time.

    Redis intersects each index with each flag's feature index (weight 0 keeps the
    createdAt score) and drops what is outside the window, so only those events cross
    the wire.
    """
    rows = flag_positions_in_window(
        client, index=index, flags=flags, start_ms=start_ms, stop_ms=stop_ms
    )
    return sorted((Position(at, member), flag) for member, at, flag in rows)


def flag_histories(
    client: Redis, *, index: Sequence[str], flags: Sequence[str]
) -> dict[str, list[tuple[int, dict[str, Any]]]]:
    """Each flag's events in the indexes (all time) as (createdAt ms, event), oldest first."""
    found = flag_positions(client, index=index, flags=flags, start_ms=None, stop_ms=None)
    events = load_events(client, positions=[position for position, _ in found])
    histories: dict[str, list[tuple[int, dict[str, Any]]]] = {flag: [] for flag in flags}
    for (position, flag), event in zip(found, events, strict=True):
        if event is not None:
            histories[flag].append((position.time_ms, event))
    return histories


def load_events(client: Redis, *, positions: Sequence[Position]) -> list[dict[str, Any] | None]:
    """The recorded events at these positions (None where one was removed meanwhile)."""
    return get_events(client, ids=[position.event_id for position in positions])


def flag_positions_in_window(
    client: Redis,
    *,
    index: Sequence[str],
    flags: Sequence[str],
    start_ms: int | None,
    stop_ms: int | None,
) -> list[tuple[str, int, str]]:
    """(member, createdAt ms, flag) of the flags' events in the indexes and the window.

    No `start_ms`/`stop_ms` means all time. A feature index is scored by relay id, so
    only its ids between the smallest and the largest id in the window can be in it:
    events are recorded roughly in time order, which keeps that span close to the window
    (out-of-order backfills widen it, never wrongly). ZMSCORE then looks those events up
    in each index, O(1) each: ZINTER would build and sort a result set per pair and costs
    several times more. Plain pipelines, so other clients' commands interleave.
    """
    lo, hi = -math.inf, math.inf
    span: tuple[int | str, int | str] = ("-inf", "+inf")
    with translate_errors():
        if start_ms is not None and stop_ms is not None:
            lo, hi = start_ms, stop_ms
            found = scripts.id_span(client, indexes=index, start_ms=start_ms, stop_ms=stop_ms)
            if found is None:
                return []
            span = found
        pipe = client.pipeline(transaction=False)
        for flag in flags:
            pipe.zrangebyscore(keys.events_by_feature(flag), span[0], span[1])
        members: list[list[str]] = pipe.execute()
        asked = [
            (flag, ids, key)
            for flag, ids in zip(flags, members, strict=True)
            if ids
            for key in index
        ]
        pipe = client.pipeline(transaction=False)
        for _, ids, key in asked:
            pipe.zmscore(key, ids)
        scores: list[list[float | None]] = pipe.execute()
    return [
        (member, int(score), flag)
        for (flag, ids, _), found in zip(asked, scores, strict=True)
        for member, score in zip(ids, found, strict=True)
        if score is not None and lo <= score <= hi
    ]


def documents_mentioning(client: Redis, *, index: str, needle: str) -> list[int]:
    """Ids of the events in `index` whose stored JSON contains `needle`."""
    with translate_errors():
        members: list[str] = client.zrange(index, 0, -1)  # type: ignore[assignment]
    return documents_with(client, ids=members, needle=needle)


def documents_with(client: Redis, *, ids: Sequence[str], needle: str) -> list[int]:
    """Those of the events `ids` whose stored JSON contains `needle` (checked in Redis)."""
    found: list[int] = []
    for at in range(0, len(ids), ENTRY_CHUNK):
        chunk = ids[at : at + ENTRY_CHUNK]
        matched = scripts.documents_mentioning(client, ids=chunk, needle=needle)
        found.extend(int(member) for member in matched)
    return found
