"""Globs: `*` is any run of characters, everything else is literal; matching is linear."""

from __future__ import annotations

import fnmatch
import time
from collections.abc import Callable
from functools import partial

import pytest
from hypothesis import given
from hypothesis import strategies as st

from policies import SubscriptionIndex, map_event, matches, parse_statements
from policies.globs import Glob

# Patterns that make a backtracking matcher take exponential time on near misses.
STARS_A_B = "*a*a*a*a*a*a*a*a*a*a*b"
DASHED_PROD = "*-*-*-prod"
# Generous: a linear matcher takes microseconds; the regex took 15 s on 40 characters.
FAST_MS = 50.0

GLOBS: list[tuple[str, str, bool]] = [
    ("*", "", True),
    ("*", "anything at all", True),
    ("**", "x", True),
    ("", "", True),
    ("", "x", False),
    ("update*", "updateOn", True),
    ("update*", "update", True),
    ("update*", "xupdate", False),
    ("*On", "updateOn", True),
    ("u*d*n", "updateOn", True),
    ("u*d*n", "updateOff", False),
    ("a.b", "a.b", True),
    ("a.b", "axb", False),
    ("a?", "ab", False),
    ("(a|b)", "(a|b)", True),
    ("a*", "a\nb", True),
    ("Update*", "updateOn", False),
    # prefix and suffix must not overlap, middle pieces must not overlap either
    ("a*a", "a", False),
    ("a*a", "aa", True),
    ("ab*ba", "aba", False),
    ("ab*ba", "abba", True),
    ("*aa*aa*", "aaa", False),
    ("*aa*aa*", "aaaa", True),
    ("*ab*ab*", "aba", False),
    ("*ab*ab*", "xabyabz", True),
    ("a*b*c", "acb", False),
    ("a*b*c", "abc", True),
    ("*é*", "café", True),
    ("a**b", "ab", True),
    # adversarial for backtracking matchers: near misses on long inputs
    (STARS_A_B, "a" * 40, False),
    (STARS_A_B, "a" * 40 + "b", True),
    (STARS_A_B, "a" * 9 + "b", False),
    (STARS_A_B, "a" * 10 + "b", True),
    (DASHED_PROD, "-" * 200, False),
    (DASHED_PROD, "-" * 200 + "prod", True),
    (DASHED_PROD, "---prod", True),
    (DASHED_PROD, "--prod", False),
    (DASHED_PROD, "a-b-c-pro", False),
    ("*a*" * 30, "a" * 29, False),
    ("*a*" * 30, "a" * 30, True),
]


@pytest.mark.parametrize(("pattern", "value", "expected"), GLOBS)
def test_glob_matches_whole_values(pattern: str, value: str, expected: bool) -> None:
    """Only `*` is special and the whole value must match, case-sensitively."""
    assert Glob(pattern).matches(value) is expected


@pytest.mark.parametrize(
    ("pattern", "values", "expected"),
    [
        ("team-a", {"team-a", "beta"}, True),
        ("TEAM-A", {"team-a"}, True),
        ("Team-*", {"beta", "team-b"}, True),
        ("team-*", {"beta"}, False),
        ("*", set(), False),
    ],
)
def test_fold_case_glob_matches_any_lower_cased_value(
    pattern: str, values: set[str], expected: bool
) -> None:
    """A case-folding glob matches if some (lower-cased) value matches."""
    assert Glob(pattern, fold_case=True).matches_any(values) is expected


def test_globs_are_values() -> None:
    """Globs compare and hash by pattern and case folding."""
    assert Glob("a*") == Glob("a*")
    assert Glob("a*") != Glob("a*", fold_case=True)
    assert len({Glob("a*"), Glob("a*")}) == 1
    assert repr(Glob("a*")) == "Glob(pattern='a*', fold_case=False)"


ADVERSARIAL = [
    (STARS_A_B, "a"),
    ("*" + "a*" * 100 + "b", "a"),
    (DASHED_PROD, "-"),
    ("*-*-*-*-*-*-*-*-prod", "a-"),
    ("*" + "ab*" * 60 + "c", "ab"),
    ("a*" * 50 + "a", "a"),
]


def _worst_ms(match: Callable[[str], object], values: list[str]) -> float:
    worst = 0.0
    for value in values:
        start = time.perf_counter()
        match(value)
        worst = max(worst, (time.perf_counter() - start) * 1000)
    return worst


@pytest.mark.parametrize("length", [40, 255, 4096])
@pytest.mark.parametrize(("pattern", "unit"), ADVERSARIAL)
def test_adversarial_patterns_match_in_linear_time(pattern: str, unit: str, length: int) -> None:
    """A near miss against a pathological pattern takes milliseconds, not exponential time."""
    value = (unit * length)[:length]
    near_misses = [value, value[:-1] + "x", value + "z"]

    for glob in (Glob(pattern), Glob(pattern, fold_case=True)):
        assert _worst_ms(glob.matches, near_misses) < FAST_MS
        assert _worst_ms(partial(_matches_some, glob), near_misses) < FAST_MS


def _matches_some(glob: Glob, value: str) -> bool:
    return glob.matches_any({value, value + "q"})


@pytest.mark.parametrize("length", [255, 4096])
def test_adversarial_policies_evaluate_in_linear_time(length: int) -> None:
    """Key, tag and action globs through evaluation and the index stay fast on long names."""
    # given: a policy whose every glob is pathological, and an event with long names
    statements = parse_statements(
        [
            {
                "effect": "allow",
                "resources": [
                    f"proj/{DASHED_PROD}:env/{STARS_A_B}:flag/{STARS_A_B};{STARS_A_B}",
                    f"proj/*:env/*:flag/*;{DASHED_PROD},{STARS_A_B}",
                ],
                "actions": [STARS_A_B, DASHED_PROD],
            },
            {"effect": "deny", "notResources": [f"proj/{STARS_A_B}"], "actions": [STARS_A_B]},
        ]
    )
    index = SubscriptionIndex()
    index.add("hostile", statements)
    long_name = ("a" * length)[:length]
    target = map_event(
        {
            "type": long_name,
            "project": ("a-" * length)[:length],
            "environment": long_name,
            "featureName": long_name,
            "tags": [{"type": long_name, "value": long_name}] * 10,
        }
    )
    # when
    start = time.perf_counter()
    included = matches(statements, target)
    found = index.match(target)
    elapsed_ms = (time.perf_counter() - start) * 1000
    # then
    assert not included
    assert found == set()
    assert elapsed_ms < FAST_MS


_PATTERNS = st.text(alphabet="ab-*\n", max_size=8)
_VALUES = st.text(alphabet="ab-\n", max_size=12)


@given(pattern=_PATTERNS, value=_VALUES)
def test_glob_agrees_with_fnmatch_when_star_is_the_only_wildcard(pattern: str, value: str) -> None:
    """On texts without `?` or `[`, a glob matches exactly as `fnmatch.fnmatchcase`."""
    assert Glob(pattern).matches(value) is fnmatch.fnmatchcase(value, pattern)


@given(pattern=st.text(alphabet="aAbB-*", max_size=8), value=st.text(alphabet="aAbB-", max_size=12))
def test_fold_case_glob_agrees_with_fnmatch_on_lower_case(pattern: str, value: str) -> None:
    """A case-folding glob is fnmatch of the lower-cased pattern on the lower-cased value."""
    expected = fnmatch.fnmatchcase(value.lower(), pattern.lower())
    assert Glob(pattern, fold_case=True).matches_any({value.lower()}) is expected
