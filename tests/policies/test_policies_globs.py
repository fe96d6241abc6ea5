"""Globs: `*` is any run of characters, everything else is literal."""

from __future__ import annotations

import pytest

from policies.globs import Glob

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
