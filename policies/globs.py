"""Glob patterns where `*` matches any run of characters and nothing else is special.

Matching is linear in the value and never backtracks: a pattern is its literal pieces
between stars, the first anchored at the start, the last at the end, and each middle
piece taken at its leftmost place after the previous one (`str.find`). Leftmost is
always right: a piece found earlier leaves more room for the pieces after it. A
regular expression (`.*` for each star) took 15 s on a 40-character near miss of
`*a*a*a*a*a*a*a*a*a*a*b`; this takes microseconds on 4 KiB (bench/policies.py).
"""

from __future__ import annotations

from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field

__all__ = ["Glob"]


@dataclass(frozen=True, slots=True)
class Glob:
    """A compiled glob; a `fold_case` glob matches values that the caller lower-cased."""

    pattern: str
    fold_case: bool = False
    literal: str | None = field(init=False, repr=False, compare=False)
    is_any: bool = field(init=False, repr=False, compare=False)
    _prefix: str = field(init=False, repr=False, compare=False)
    _suffix: str = field(init=False, repr=False, compare=False)
    _middle: tuple[str, ...] = field(init=False, repr=False, compare=False)
    _min_length: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        text = self.pattern.lower() if self.fold_case else self.pattern
        pieces = text.split("*")
        wildcard = len(pieces) > 1
        middle = tuple(piece for piece in pieces[1:-1] if piece)
        object.__setattr__(self, "literal", None if wildcard else text)
        object.__setattr__(self, "is_any", wildcard and not text.strip("*"))
        object.__setattr__(self, "_prefix", pieces[0])
        object.__setattr__(self, "_suffix", pieces[-1] if wildcard else "")
        object.__setattr__(self, "_middle", middle)
        object.__setattr__(self, "_min_length", len(text) - len(pieces) + 1)

    def matches(self, value: str) -> bool:
        """Whether the whole of `value` matches the pattern."""
        if self.literal is not None:
            return value == self.literal
        if self.is_any:
            return True
        if len(value) < self._min_length:
            return False  # also keeps the prefix and the suffix from overlapping
        if not value.startswith(self._prefix) or not value.endswith(self._suffix):
            return False
        position, end = len(self._prefix), len(value) - len(self._suffix)
        for piece in self._middle:
            found = value.find(piece, position, end)
            if found < 0:
                return False
            position = found + len(piece)
        return True

    def matches_any(self, values: AbstractSet[str]) -> bool:
        """Whether the pattern matches at least one of `values`."""
        if self.literal is not None:
            return self.literal in values
        if self.is_any:
            return bool(values)
        return any(self.matches(value) for value in values)
