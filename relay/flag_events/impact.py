"""The impact of a flag event: how each variation's share of evaluations moved around it.

Evaluations come from client metrics (yes/no counts and variant counts). Two groups of
variations are compared separately, each as shares of its own total: the boolean one
(`true` from `yes`, `false` from `no`) and the variant one (each reported variant name).
The impact's percentage is the largest change, in percentage points, of any variation's
share between the ten minutes before the event and the ten minutes after it. A side with
no evaluations at all counts as a share of 0 for every variation: a flag that starts (or
stops) being evaluated has changed completely.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from relay.store.evaluation_windows import WINDOW_MINUTES
from relay.store.evaluations import FALSE, TRUE, Variation

__all__ = [
    "Impact",
    "ImpactSize",
    "VariationCounts",
    "measure_impact",
    "no_evaluations",
    "size_of",
]


class ImpactSize(StrEnum):
    NONE = "none"
    SMALL = "small"
    MEDIUM = "medium"
    LARGE = "large"


@dataclass(frozen=True)
class VariationCounts:
    variation: Variation
    before: int
    after: int


@dataclass(frozen=True)
class Impact:
    size: ImpactSize
    percentage: float
    reason: str
    variations: tuple[VariationCounts, ...]


def size_of(percentage: float) -> ImpactSize:
    """none (0), small (< 20), medium (20 to 80), large (> 80)."""
    if percentage <= 0:
        return ImpactSize.NONE
    if percentage < 20:
        return ImpactSize.SMALL
    return ImpactSize.MEDIUM if percentage <= 80 else ImpactSize.LARGE


_NOTHING = f"no evaluations recorded in the {WINDOW_MINUTES} minutes before or after"
_NO_EVALUATIONS = Impact(ImpactSize.NONE, 0.0, _NOTHING, ())


def no_evaluations() -> Impact:
    """The impact of an event whose flag was not evaluated around it."""
    return _NO_EVALUATIONS


def measure_impact(before: Mapping[Variation, int], after: Mapping[Variation, int]) -> Impact:
    """Compare the evaluation counts of the windows before and after an event."""
    rows = _rows(before, after)
    total_before, total_after = _evaluations(rows, after=False), _evaluations(rows, after=True)
    if total_before == 0 and total_after == 0:
        return no_evaluations()
    changes = [(_change(row, rows), row) for row in rows]
    # rounded, so float noise cannot pick a later variation over an equal earlier one
    delta, row = max(changes, key=lambda change: round(abs(change[0]), 9))
    percentage = round(abs(delta) * 100, 2)
    reason = _reason(row, rows, percentage, total_before, total_after)
    return Impact(size_of(percentage), percentage, reason, tuple(rows))


def _rows(before: Mapping[Variation, int], after: Mapping[Variation, int]) -> list[VariationCounts]:
    """One row per variation seen; both booleans whenever either was reported."""
    seen = {v for v, n in before.items() if n} | {v for v, n in after.items() if n}
    if seen & {TRUE, FALSE}:
        seen |= {TRUE, FALSE}
    ordered = sorted(seen, key=lambda v: (v.kind != "bool", v.name != "true", v.name))
    return [VariationCounts(v, before.get(v, 0), after.get(v, 0)) for v in ordered]


def _evaluations(rows: list[VariationCounts], *, after: bool) -> int:
    """Evaluations on one side: yes + no when reported (variants break those down)."""
    booleans = [r for r in rows if r.variation.kind == "bool"]
    return sum(r.after if after else r.before for r in booleans or rows)


def _share(row: VariationCounts, rows: list[VariationCounts], *, after: bool) -> float:
    """The row's share of its group's evaluations on one side (0 when the group had none)."""
    group = [r for r in rows if r.variation.kind == row.variation.kind]
    total = sum(r.after if after else r.before for r in group)
    count = row.after if after else row.before
    return count / total if total else 0.0


def _change(row: VariationCounts, rows: list[VariationCounts]) -> float:
    return _share(row, rows, after=True) - _share(row, rows, after=False)


def _reason(
    row: VariationCounts,
    rows: list[VariationCounts],
    percentage: float,
    total_before: int,
    total_after: int,
) -> str:
    counts = f"{total_before} evaluations before, {total_after} after"
    if percentage == 0:
        return f"no change in the share of any variation ({counts})"
    start = _share(row, rows, after=False) * 100
    end = _share(row, rows, after=True) * 100
    direction = "rose" if end > start else "fell"
    text = f"share of {row.variation.label} {direction} from {_pct(start)} to {_pct(end)}"
    if total_before == 0:
        return f"{text}: no evaluations in the {WINDOW_MINUTES} minutes before"
    if total_after == 0:
        return f"{text}: no evaluations in the {WINDOW_MINUTES} minutes after"
    return f"{text} ({counts})"


def _pct(value: float) -> str:
    text = f"{value:.1f}".removesuffix(".0")
    return f"{text}%"
