"""The indexed part of Unleash's event search: which recorded events a createdAt window, a
set of projects, of features or of relay ids keeps, newest first (createdAt, then relay
id, both descending, as Unleash orders them).

Three ways to read them (relay/store/lua/search_*.lua), the cheapest for the filter:

- no project, feature or id: the time index alone answers any page and the exact count by
  rank, in O(log n) (`search_time_page`);
- a small source (the given ids, or the projects or features with the fewest events, up
  to MEMBERS_MAX): all its members are read with their createdAt, kept if they are in the
  window and in the other filters' indexes, and sorted (`search_members`);
- otherwise the window is walked newest first, each event checked against the project
  and feature indexes (`search_walk`), `WALK_STEP` events per script call so Redis never
  stops for long.

A walk is bounded: past `examine_max` events, or `time_limit` seconds, it stops and says
so (`complete=False`); the count is then the matches among the events it examined. The
costs that choose between the ways (WALK_US, REQUIRE_US, MEMBER_US) were measured on
1,000,000 synthetic events in the embedded Redis 6.2 of a 2-core machine.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from relay.store import keys, scripts
from relay.store.client import Redis, translate_errors

# microseconds of Redis time per event: walked, checked against one group of indexes,
# read as a member (with its createdAt: Redis 6.2 formats each score it answers)
WALK_US: Final = 0.3
REQUIRE_US: Final = 0.6
MEMBER_US: Final = 2.0
MEMBERS_MAX: Final = 30_000  # a source read whole: ~60 ms of Redis time
EXAMINE_MAX: Final = 150_000  # events a walk examines at most (~135 ms with one filter)
TIME_LIMIT: Final = 0.15  # seconds a walk may take, whatever its count
WALK_STEP: Final = 20_000  # events per search_walk.lua call (~20 ms of Redis time)
_ALL: Final = 2**31


@dataclass(frozen=True)
class IndexedFilter:
    """The filters the indexes answer; empty tuples filter nothing."""

    start_ms: int | None = None  # createdAt at or after
    end_ms: int | None = None  # createdAt before
    projects: tuple[str, ...] = ()  # any of
    features: tuple[str, ...] = ()  # any of
    ids: tuple[int, ...] = ()  # any of


@dataclass(frozen=True)
class IdPage:
    """A page of relay ids, newest first, and how many events the filter keeps."""

    ids: list[int]
    total: int  # exact when complete, else the matches among the events examined
    complete: bool
    searched_back_to_ms: int | None = None  # createdAt of the oldest event examined, if not
    examined: int = 0  # events a walk examined (0: counted without walking)


@dataclass(frozen=True)
class _Plan:
    how: str  # "time", "members" or "walk"
    low: str
    high: str
    sources: tuple[str, ...] = ()
    required: tuple[tuple[str, ...], ...] = ()
    known_total: int | None = None  # counted by the indexes without walking


def _bounds(filter_: IndexedFilter) -> tuple[str, str]:
    low = "-inf" if filter_.start_ms is None else str(filter_.start_ms)
    high = "+inf" if filter_.end_ms is None else str(filter_.end_ms - 1)  # ms are integers
    return low, high


def _plan(client: Redis, filter_: IndexedFilter, *, wanted: int | None) -> _Plan:
    """How to read what `filter_` keeps; `wanted`: how many of its events the caller will
    take, newest first (None: it counts them all)."""
    low, high = _bounds(filter_)
    projects = tuple(keys.events_by_project(p) for p in filter_.projects)
    features = tuple(keys.events_by_feature(f) for f in filter_.features)
    groups = [group for group in (projects, features) if group]
    if filter_.ids:
        return _Plan("members", low, high, required=tuple(groups))
    if not groups:
        return _Plan("time", low, high)
    with translate_errors():
        pipe = client.pipeline(transaction=False)
        pipe.zcount(keys.EVENTS_TIME, low, high)
        for group in groups:
            for key in group:
                pipe.zcard(key)
        counts = [int(count) for count in pipe.execute()]
    in_window, sizes = counts[0], iter(counts[1:])
    group_sizes = [sum(next(sizes) for _ in group) for group in groups]
    smallest = min(range(len(groups)), key=group_sizes.__getitem__)
    others = tuple(group for i, group in enumerate(groups) if i != smallest)
    # a walk reads the window until it has `wanted` events, at the smallest group's density
    walked = float(in_window)
    if wanted is not None and group_sizes[smallest]:
        walked = min(walked, wanted * in_window / group_sizes[smallest])
    walk_cost = walked * (WALK_US + REQUIRE_US * len(groups))
    members = group_sizes[smallest]
    if members <= MEMBERS_MAX and members * MEMBER_US <= walk_cost:
        return _Plan("members", low, high, sources=groups[smallest], required=others)
    known = group_sizes[0] if _known_total(filter_) else None
    return _Plan("walk", low, high, required=tuple(groups), known_total=known)


def _known_total(filter_: IndexedFilter) -> bool:
    """Whether the indexes count what `filter_` keeps without walking: a single group of
    projects or of features, over all time."""
    unwindowed = filter_.start_ms is None and filter_.end_ms is None
    return unwindowed and not filter_.ids and bool(filter_.projects) != bool(filter_.features)


def search_page(
    client: Redis,
    filter_: IndexedFilter,
    *,
    offset: int,
    limit: int,
    examine_max: int = EXAMINE_MAX,
    time_limit: float = TIME_LIMIT,
) -> IdPage:
    """The page of ids `filter_` keeps from `offset`, and their count (bounded: see above)."""
    plan = _plan(client, filter_, wanted=offset + limit if _known_total(filter_) else None)
    if plan.how == "time":
        total, page = scripts.search_time_page(
            client, low=plan.low, high=plan.high, offset=offset, limit=limit
        )
        return IdPage([int(i) for i in page], total, complete=True)
    if plan.how == "members":
        ordered = _members(client, plan, filter_.ids)
        return IdPage(ordered[offset : offset + limit], len(ordered), complete=True)
    return _walk_page(client, plan, offset, limit, examine_max, time_limit)


def _members(client: Redis, plan: _Plan, ids: Sequence[int]) -> list[int]:
    found = scripts.search_members(
        client,
        low=plan.low,
        high=plan.high,
        sources=plan.sources,
        ids=sorted(set(ids)),
        required=plan.required,
    )
    return [int(i) for i in found]


def _walk_page(
    client: Redis, plan: _Plan, offset: int, limit: int, examine_max: int, time_limit: float
) -> IdPage:
    page: list[int] = []
    matched = examined = 0
    cursor, last_examined = "", ""
    deadline = time.monotonic() + time_limit
    while True:
        step = scripts.search_walk(
            client,
            low=plan.low,
            high=plan.high,
            cursor=cursor,
            required=plan.required,
            examine=min(WALK_STEP, examine_max - examined),
            skip=max(0, offset - matched),
            take=limit - len(page),
        )
        page += [int(i) for i in step.collected]
        matched += step.matched
        examined += step.examined
        cursor, last_examined = step.cursor, step.last_examined or last_examined
        if not cursor:
            return IdPage(page, matched, complete=True, examined=examined)
        if plan.known_total is not None and len(page) == limit:
            return IdPage(page, plan.known_total, complete=True, examined=examined)
        if examined >= examine_max or time.monotonic() > deadline:
            oldest = created_at_ms(client, last_examined)
            return IdPage(page, matched, False, oldest, examined)


@dataclass
class CandidateStream:
    """The ids an indexed filter keeps, newest first, in chunks; bounded like a walk.
    `exhausted` turns true once every one was yielded."""

    client: Redis
    filter_: IndexedFilter
    chunk: int = 1000
    examine_max: int = EXAMINE_MAX
    wanted: int | None = None  # how many the caller will likely take (None: all)
    exhausted: bool = field(default=False, init=False)
    last_examined: str = field(default="", init=False)

    def __iter__(self) -> Iterator[list[int]]:
        plan = _plan(self.client, self.filter_, wanted=self.wanted)
        if plan.how == "members":
            ordered = _members(self.client, plan, self.filter_.ids)
            for start in range(0, len(ordered), self.chunk):
                yield ordered[start : start + self.chunk]
            self.exhausted = True
            return
        yield from self._walk(plan)

    def _walk(self, plan: _Plan) -> Iterator[list[int]]:
        cursor, examined = "", 0
        while examined < self.examine_max:
            step = scripts.search_walk(
                self.client,
                low=plan.low,
                high=plan.high,
                cursor=cursor,
                required=plan.required,
                examine=self.chunk,
                skip=0,
                take=_ALL,  # a step may pass `examine` by a group of equal times
            )
            examined += step.examined
            cursor = step.cursor
            self.last_examined = step.last_examined or self.last_examined
            if not cursor:
                self.exhausted = True
            if step.collected:
                yield [int(i) for i in step.collected]
            if not cursor:
                return


def read_documents(
    client: Redis, ids: Sequence[int], *, max_bytes: int
) -> Iterator[list[tuple[int, str | None]]]:
    """The events' stored JSON in order, in batches of at most `max_bytes` (or one event);
    None for an event gone meanwhile (trimmed)."""
    batch: list[int] = []
    used = 0
    for event_id, size in zip(ids, scripts.search_sizes(client, ids=ids), strict=True):
        if batch and used + size > max_bytes:
            yield _get(client, batch)
            batch, used = [], 0
        batch.append(event_id)
        used += size
    if batch:
        yield _get(client, batch)


def fetch_documents(
    client: Redis, ids: Sequence[int], *, max_bytes: int
) -> list[tuple[int, str | None]]:
    """The stored JSON of the first of `ids` that fit in `max_bytes` together (at least one),
    in order; None for an event gone meanwhile (trimmed)."""
    return next(read_documents(client, ids, max_bytes=max_bytes), [])


def _get(client: Redis, ids: list[int]) -> list[tuple[int, str | None]]:
    with translate_errors():
        found: list[Any] = client.mget([keys.event(i) for i in ids])
    return [(i, None if text is None else str(text)) for i, text in zip(ids, found, strict=True)]


def created_at_ms(client: Redis, event_id: int | str) -> int | None:
    """The createdAt (ms) the time index holds for an event, None when it has none."""
    if event_id == "":
        return None
    with translate_errors():
        score = client.zscore(keys.EVENTS_TIME, str(event_id))
    return None if score is None else int(score)
