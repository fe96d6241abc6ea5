"""The impact of a flag event, measured from evaluation counts before and after it."""

from __future__ import annotations

import pytest

from relay.flag_events.impact import ImpactSize, measure_impact, size_of
from relay.store.evaluations import FALSE, TRUE, Variation

BLUE = Variation("variant", "blue")
GREEN = Variation("variant", "green")


@pytest.mark.parametrize(
    ("percentage", "size"),
    [
        (0.0, ImpactSize.NONE),
        (0.01, ImpactSize.SMALL),
        (19.99, ImpactSize.SMALL),
        (20.0, ImpactSize.MEDIUM),
        (80.0, ImpactSize.MEDIUM),
        (80.01, ImpactSize.LARGE),
        (100.0, ImpactSize.LARGE),
    ],
)
def test_size_thresholds(percentage: float, size: ImpactSize) -> None:
    """none is exactly 0, small below 20, medium 20 to 80, large above 80."""
    assert size_of(percentage) is size


@pytest.mark.parametrize(
    ("before", "after", "percentage", "size", "reason"),
    [
        ({}, {}, 0.0, "none", "no evaluations recorded in the 10 minutes before or after"),
        (
            {TRUE: 50, FALSE: 50},
            {TRUE: 5, FALSE: 5},
            0.0,
            "none",
            "no change in the share of any variation (100 evaluations before, 10 after)",
        ),
        (
            {TRUE: 50, FALSE: 50},
            {TRUE: 60, FALSE: 40},
            10.0,
            "small",
            "share of true rose from 50% to 60% (100 evaluations before, 100 after)",
        ),
        (
            {TRUE: 10, FALSE: 90},
            {TRUE: 95, FALSE: 5},
            85.0,
            "large",
            "share of true rose from 10% to 95% (100 evaluations before, 100 after)",
        ),
        (
            {TRUE: 90, FALSE: 10},
            {TRUE: 40, FALSE: 60},
            50.0,
            "medium",
            "share of true fell from 90% to 40% (100 evaluations before, 100 after)",
        ),
        (
            {},
            {TRUE: 3, FALSE: 1},
            75.0,
            "medium",
            "share of true rose from 0% to 75%: no evaluations in the 10 minutes before",
        ),
        (
            {TRUE: 1, FALSE: 2},
            {},
            66.67,
            "medium",
            "share of false fell from 66.7% to 0%: no evaluations in the 10 minutes after",
        ),
    ],
)
def test_measure_impact(
    before: dict[Variation, int],
    after: dict[Variation, int],
    percentage: float,
    size: str,
    reason: str,
) -> None:
    """The largest change in any variation's share, its size and a readable reason."""
    impact = measure_impact(before, after)
    assert (impact.percentage, impact.size.value, impact.reason) == (percentage, size, reason)


def test_variants_are_shares_of_their_own_group() -> None:
    """Variant shares are among variant counts, so yes/no and variants are not mixed."""
    # given: the boolean split is unchanged, the variant split flips
    before = {TRUE: 100, FALSE: 0, BLUE: 90, GREEN: 10}
    after = {TRUE: 100, FALSE: 0, BLUE: 20, GREEN: 80}
    # when
    impact = measure_impact(before, after)
    # then
    assert impact.percentage == 70.0
    assert impact.reason.startswith("share of variant blue fell from 90% to 20%")
    rows = [(row.variation.value, row.before, row.after) for row in impact.variations]
    assert rows == [(True, 100, 100), (False, 0, 0), ("blue", 90, 20), ("green", 10, 80)]


def test_only_variants_reported() -> None:
    """Without yes/no counts the summary lists the variants alone."""
    impact = measure_impact({BLUE: 4}, {BLUE: 2, GREEN: 2})
    assert [row.variation.value for row in impact.variations] == ["blue", "green"]
    assert impact.percentage == 50.0
