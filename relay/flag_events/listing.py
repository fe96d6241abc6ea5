"""The flag-events query: which recorded flag events a request lists, in what order.

Events are listed newest first, by (createdAt ms, relay id as Redis orders it). Filters
split in two. Restricting ones name the only flags that can match: `query` (the flag),
`applicationKey` (the flags those apps evaluated), `impactSize` small/medium/large (the
flags evaluated at all), `hasExperiments=true` (the flags with iterations). Excluding
ones fail only for a known set of flags: `hasExperiments=false` (the flags with
iterations), `impactSize=none` (the evaluated flags). Plans, chosen per request:

- **window**: no filter but time and `global`. The page is a ZREVRANGEBYSCORE walk with
  LIMIT from the cursor; totalCount is ZCOUNT on each index. Cost: O(log n + page).
- **flags**: a restricting filter. Redis intersects the indexes with those flags'
  feature indexes (ZINTER, in a script that drops what is outside the window), so only
  their events cross the wire; every filter runs on that list, which gives the page
  and an exact totalCount.
- **complement**: only excluding filters. The page is a walk from the cursor, loading
  events in growing chunks and filtering while walking until it has limit + 1;
  totalCount is the ZCOUNT of the window minus the events of the suspect flags (found
  as in the flags plan) that a filter excludes.
- **scan**: a flag set too large to intersect (> MAX_PLANNED_FLAGS). The page is the
  same walk; the exact totalCount examines every event of the window.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import Any

from relay.flag_events.experiment_cache import ExperimentCache
from relay.flag_events.experiments import Iteration
from relay.flag_events.facts import Candidate, Facts, Filters
from relay.flag_events.impact import Impact, ImpactSize
from relay.store import flag_events as index
from relay.store.client import Redis
from relay.store.flag_events import Position

DAY_MS = 86_400_000
DEFAULT_WINDOW_MS = 7 * DAY_MS
DEFAULT_LIMIT = 20
MAX_LIMIT = 100
# the flags plan intersects once per flag and index; past this many flags, walk instead
MAX_PLANNED_FLAGS = 2000
_COUNT_CHUNK = 1000

__all__ = [
    "DEFAULT_LIMIT",
    "DEFAULT_WINDOW_MS",
    "MAX_LIMIT",
    "FlagEventPage",
    "FlagEventQuery",
    "ListedEvent",
    "list_flag_events",
]


@dataclass(frozen=True)
class FlagEventQuery:
    filters: Filters
    start_ms: int
    stop_ms: int
    limit: int = DEFAULT_LIMIT
    include_global: bool = True
    expand_experiments: bool = False
    after: Position | None = None
    before: Position | None = None
    max_planned_flags: int = MAX_PLANNED_FLAGS


@dataclass(frozen=True)
class ListedEvent:
    position: Position
    event: dict[str, Any]
    impact: Impact
    iterations: tuple[Iteration, ...] | None  # None unless experiments were expanded


@dataclass(frozen=True)
class FlagEventPage:
    items: list[ListedEvent]
    total: int
    older: Position | None  # `after` cursor of the next page, when there is one
    newer: Position | None  # `before` cursor of the previous page, when there is one
    plan: str


def list_flag_events(
    client: Redis, query: FlagEventQuery, *, cache: ExperimentCache | None = None
) -> FlagEventPage:
    """One page of the flag events the query matches, and how many match in all.

    `cache` keeps experiment facts between requests (one per application).
    """
    facts = Facts(
        client, query.filters, (query.start_ms, query.stop_ms), cache or ExperimentCache()
    )
    keys = index.index_keys(
        project=query.filters.project,
        environment=query.filters.environment,
        include_global=query.include_global,
    )
    only = _only_flags(facts)
    if only is not None and len(only) <= query.max_planned_flags:
        # a nonzero impact needs evaluations near the event: search only around them
        nonzero = query.filters.impact_size not in (None, ImpactSize.NONE)
        found = _candidates(facts, query, keys, only, near_evaluations=nonzero)
        return _page_of_list(facts, query, facts.matching(found))
    items, older, newer = _walk_page(facts, query, keys)
    total, plan = _count(facts, query, keys, restricted=only is not None)
    return FlagEventPage(_listed(facts, query, items), total, older, newer, plan)


def _only_flags(facts: Facts) -> set[str] | None:
    """The flags outside which nothing can match, when a restricting filter says so."""
    filters = facts.filters
    sets: list[set[str]] = []
    if filters.flag is not None:
        sets.append({filters.flag})
    nonzero_impact = filters.impact_size not in (None, ImpactSize.NONE)
    if filters.apps is not None or nonzero_impact:
        sets.append(facts.evaluated_flags())
    if filters.has_experiments and not sets:
        sets.append(facts.experiment_flags())  # when nothing cheaper narrows the flags
    return set.intersection(*sets) if sets else None


def _suspects(facts: Facts, query: FlagEventQuery, keys: Sequence[str]) -> list[Candidate] | None:
    """The events an excluding filter may drop (every other event passes); None if too many.

    An event has a nonzero impact only near evaluations, so those suspects are searched
    around them; an experiment flag's events are suspects at any time.
    """
    filters, limit = facts.filters, query.max_planned_flags
    found: set[Candidate] = set()
    if filters.has_experiments is False:
        flags = facts.experiment_flags()
        if len(flags) > limit:
            return None
        found.update(_candidates(facts, query, keys, flags, near_evaluations=False))
    if filters.impact_size is ImpactSize.NONE:
        flags = facts.evaluated_flags()
        if len(flags) > limit:
            return None
        found.update(_candidates(facts, query, keys, flags, near_evaluations=True))
    return sorted(found)


def _candidates(
    facts: Facts,
    query: FlagEventQuery,
    keys: Sequence[str],
    flags: set[str],
    *,
    near_evaluations: bool,
) -> list[Candidate]:
    start, stop = query.start_ms, query.stop_ms
    if near_evaluations and flags:
        span = facts.nonzero_impact_span(sorted(flags))
        if span is None:
            return []
        start, stop = span
    return index.flag_positions(
        facts.client, index=keys, flags=sorted(flags), start_ms=start, stop_ms=stop
    )


def _count(
    facts: Facts, query: FlagEventQuery, keys: Sequence[str], *, restricted: bool
) -> tuple[int, str]:
    """The exact totalCount when the page was walked."""
    window = index.count_between(
        facts.client, index=keys, start_ms=query.start_ms, stop_ms=query.stop_ms
    )
    if not query.filters.any:
        return window, "window"
    suspects = None if restricted else _suspects(facts, query, keys)
    if suspects is not None:
        return window - len(suspects) + len(facts.matching(suspects)), "complement"
    return _count_by_scan(facts, query, keys), "scan"


def _page_of_list(facts: Facts, query: FlagEventQuery, matched: list[Candidate]) -> FlagEventPage:
    """Cut the page from every match (oldest first), around the cursor."""
    positions = [position for position, _ in matched]
    if query.before is not None:
        newer = [p for p in positions if p > query.before]
        items = list(reversed(newer[: query.limit]))
    else:
        older = [p for p in positions if query.after is None or p < query.after]
        items = list(reversed(older))[: query.limit]
    has_older = bool(items) and positions[0] < items[-1]
    has_newer = bool(items) and positions[-1] > items[0]
    loaded = zip(items, facts.events(items), strict=True)
    page = [(p, event) for p, event in loaded if event is not None]
    return FlagEventPage(
        _listed(facts, query, page),
        len(matched),
        items[-1] if has_older else None,
        items[0] if has_newer else None,
        "flags",
    )


def _walk_page(
    facts: Facts, query: FlagEventQuery, keys: Sequence[str]
) -> tuple[list[tuple[Position, dict[str, Any]]], Position | None, Position | None]:
    """The page by walking the indexes from the cursor; and the cursors around it."""
    newest_first = query.before is None
    past = query.after if newest_first else query.before
    found = list(islice(_matches(facts, query, keys, newest_first, past), query.limit + 1))
    more = len(found) > query.limit
    items = found[: query.limit]
    if not items:
        return [], None, None
    # from the window's edge (no cursor) nothing lies behind the first item
    behind = past is not None and next(
        _matches(facts, query, keys, not newest_first, items[0][0], first_chunk=1), None
    )
    if not newest_first:
        items.reverse()
        return items, items[-1][0] if behind else None, items[0][0] if more else None
    return items, items[-1][0] if more else None, items[0][0] if behind else None


def _matches(
    facts: Facts,
    query: FlagEventQuery,
    keys: Sequence[str],
    newest_first: bool,
    past: Position | None,
    first_chunk: int | None = None,
) -> Iterator[tuple[Position, dict[str, Any]]]:
    """Matching events beyond `past`, in walk order, filtered chunk by chunk."""
    walk = index.walk(
        facts.client,
        index=keys,
        start_ms=query.start_ms,
        stop_ms=query.stop_ms,
        newest_first=newest_first,
        past=past,
    )
    chunk = first_chunk or query.limit + 1
    while positions := list(islice(walk, chunk)):
        candidates = _with_flags(facts, positions)
        kept = set(facts.matching(candidates)) if query.filters.any else set(candidates)
        for position, flag in candidates:
            if (position, flag) in kept:
                event = facts.events([position])[0]
                assert event is not None  # _with_flags dropped vanished events
                yield position, event
        chunk = min(chunk * 2, 512)


def _with_flags(facts: Facts, positions: Sequence[Position]) -> list[Candidate]:
    """Positions with their events' flags; events removed meanwhile are left out."""
    events = facts.events(positions)
    return [
        (position, str(event.get("featureName")))
        for position, event in zip(positions, events, strict=True)
        if event is not None
    ]


def _count_by_scan(facts: Facts, query: FlagEventQuery, keys: Sequence[str]) -> int:
    """Exact totalCount under filters no index answers: every event of the window, once."""
    positions = index.positions_between(
        facts.client, index=keys, start_ms=query.start_ms, stop_ms=query.stop_ms
    )
    total = 0
    for start in range(0, len(positions), _COUNT_CHUNK):
        candidates = _with_flags(facts, positions[start : start + _COUNT_CHUNK])
        total += len(facts.matching(candidates))
    return total


def _listed(
    facts: Facts, query: FlagEventQuery, items: Sequence[tuple[Position, dict[str, Any]]]
) -> list[ListedEvent]:
    candidates = [(position, str(event.get("featureName"))) for position, event in items]
    impacts = facts.impacts(candidates)
    flags = [flag for _, flag in candidates]
    runs = facts.iterations(flags) if query.expand_experiments else [None] * len(flags)
    return [
        ListedEvent(position, event, impact, None if run is None else tuple(run))
        for (position, event), impact, run in zip(items, impacts, runs, strict=True)
    ]
