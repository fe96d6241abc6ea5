"""Glob patterns where `*` matches any run of characters and nothing else is special."""

from __future__ import annotations

import re
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
    _regex: re.Pattern[str] | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        text = self.pattern.lower() if self.fold_case else self.pattern
        wildcard = "*" in text
        regex = ".*".join(re.escape(part) for part in text.split("*"))
        object.__setattr__(self, "literal", None if wildcard else text)
        object.__setattr__(self, "is_any", wildcard and text.strip("*") == "")
        object.__setattr__(self, "_regex", re.compile(regex, re.S) if wildcard else None)

    def matches(self, value: str) -> bool:
        """Whether the whole of `value` matches the pattern."""
        if self._regex is None:
            return value == self.literal
        return self.is_any or self._regex.fullmatch(value) is not None

    def matches_any(self, values: AbstractSet[str]) -> bool:
        """Whether the pattern matches at least one of `values`."""
        if self.literal is not None:
            return self.literal in values
        if self.is_any:
            return bool(values)
        return any(self.matches(value) for value in values)
