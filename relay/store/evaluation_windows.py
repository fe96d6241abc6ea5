"""Reading the evaluation counts of the ten minutes before and after flag events.

Per flag, the minutes index says which minutes have counts at all (read once per request
for the whole time window), so windows with none cost nothing, only minute hashes that
exist are read, each once, and the span where a nonzero impact is possible is known.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

from relay.store import keys
from relay.store.client import Redis, translate_errors
from relay.store.evaluations import MINUTE_MS, SEP, Variation

WINDOW_MINUTES = 10  # an impact compares the minutes this far before and after a flag event

__all__ = ["WINDOW_MINUTES", "Window", "evaluation_windows", "minutes_with_counts", "nonzero_span"]

Window = tuple[Counter[Variation], Counter[Variation]]


def minutes_with_counts(
    client: Redis, *, environment: str, flags: Sequence[str], start_ms: int, stop_ms: int
) -> dict[str, list[int]]:
    """Per flag, its minutes with counts within ten minutes of start_ms..stop_ms, ascending."""
    low = start_ms // MINUTE_MS - WINDOW_MINUTES
    high = stop_ms // MINUTE_MS + WINDOW_MINUTES
    with translate_errors():
        pipe = client.pipeline(transaction=False)
        for flag in flags:
            pipe.zrangebyscore(keys.evaluation_minutes(environment, flag), low, high)
        found: list[list[str]] = pipe.execute()
    return {flag: sorted(int(m) for m in rows) for flag, rows in zip(flags, found, strict=True)}


def nonzero_span(
    minutes: Iterable[list[int]], *, start_ms: int, stop_ms: int
) -> tuple[int, int] | None:
    """The part of start_ms..stop_ms where an event can have a nonzero impact, if any.

    That is within ten minutes of a minute with counts.
    """
    ends = [
        m for flag_minutes in minutes if flag_minutes for m in (flag_minutes[0], flag_minutes[-1])
    ]
    if not ends:
        return None
    first = max(start_ms, (min(ends) - WINDOW_MINUTES) * MINUTE_MS)
    last = min(stop_ms, (max(ends) + WINDOW_MINUTES + 1) * MINUTE_MS - 1)
    return (first, last) if first <= last else None


def evaluation_windows(
    client: Redis,
    *,
    environment: str,
    requests: Sequence[tuple[str, int]],
    apps: frozenset[str] | None,
    minutes: Mapping[str, list[int]],
) -> list[Window]:
    """For each (flag, event ms): counts of the ten minutes before and the ten after.

    `minutes` is minutes_with_counts() for a time window holding every event asked about.
    The event's own minute belongs to neither side: its counts are from both. `apps`
    keeps only those apps' evaluations.
    """
    sides = [_sides(minutes[flag], at // MINUTE_MS) for flag, at in requests]
    cells = sorted(
        {
            (flag, m)
            for (flag, _), side in zip(requests, sides, strict=True)
            for m in [*side[0], *side[1]]
        }
    )
    with translate_errors():
        pipe = client.pipeline(transaction=False)
        for flag, minute in cells:
            pipe.hgetall(keys.evaluations(environment, flag, minute))
        raw: list[dict[str, str]] = pipe.execute()
    counts = {cell: _counts(fields, apps) for cell, fields in zip(cells, raw, strict=True)}
    return [
        (_total(counts, flag, before), _total(counts, flag, after))
        for (flag, _), (before, after) in zip(requests, sides, strict=True)
    ]


def _total(
    counts: dict[tuple[str, int], Counter[Variation]], flag: str, minutes: list[int]
) -> Counter[Variation]:
    total: Counter[Variation] = Counter()
    for minute in minutes:
        total.update(counts[(flag, minute)])
    return total


def _counts(fields: dict[str, str], apps: frozenset[str] | None) -> Counter[Variation]:
    """A minute hash's counts by variation (only `apps`' when given)."""
    found: Counter[Variation] = Counter()
    for member, value in fields.items():
        app, _, variation = member.partition(SEP)
        if apps is None or app in apps:
            kind, _, name = variation.partition(":")
            found[Variation(kind, name)] += int(value)
    return found


def _sides(minutes: list[int], minute: int) -> tuple[list[int], list[int]]:
    """The minutes with counts in the window before `minute` and in the one after."""
    before = minutes[bisect_left(minutes, minute - WINDOW_MINUTES) : bisect_left(minutes, minute)]
    after = minutes[bisect_right(minutes, minute) : bisect_right(minutes, minute + WINDOW_MINUTES)]
    return before, after
