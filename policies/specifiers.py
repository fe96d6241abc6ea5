"""Resource specifiers: `type/keyglob[;item,...]` segments joined by `:`.

An item is a tag glob (all must match some tag of the resource, case-insensitively,
by `value` or `type:value`) or `{critical:true|false}` on `env`. Inside the items a
`:` ends the segment only when a resource type follows it (`flag/*;simple:beta`
is one segment with the tag `simple:beta`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from policies.errors import SpecifierError
from policies.globs import Glob
from policies.resources import RESOURCE_TYPES, Segment

__all__ = ["ResourceSpecifier", "SegmentSpecifier", "parse_specifier"]

_TYPE_STOPS = "/:;"
_CRITICAL_VALUES = {"true": True, "false": False}


@dataclass(frozen=True)
class SegmentSpecifier:
    """One parsed `type/keyglob;items` segment."""

    type: str
    key: Glob
    tags: tuple[Glob, ...] = ()
    critical: bool | None = None

    def matches(self, segment: Segment, critical_environments: frozenset[str]) -> bool:
        """Whether this segment specifier matches an event's segment of the same type."""
        if segment.key is None:
            return True
        if not self.key.matches(segment.key):
            return False
        if self.critical is not None and (segment.key in critical_environments) != self.critical:
            return False
        return not self.tags or all(tag.matches_any(segment.tags) for tag in self.tags)


@dataclass(frozen=True)
class ResourceSpecifier:
    """A parsed resource specifier; `text` is the original string."""

    text: str
    segments: tuple[SegmentSpecifier, ...]
    shape: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # The segment types, which must equal the resource's for a match.
        object.__setattr__(self, "shape", tuple(segment.type for segment in self.segments))

    def matches(self, resource: Sequence[Segment], critical_environments: frozenset[str]) -> bool:
        """Whether the specifier matches a resource of the same shape."""
        if len(resource) != len(self.segments):
            return False
        for spec, segment in zip(self.segments, resource, strict=True):
            if spec.type != segment.type or not spec.matches(segment, critical_environments):
                return False
        return True


def parse_specifier(text: str) -> ResourceSpecifier:
    """Parse a specifier; raises `SpecifierError` with the offset of the fault."""
    segments: list[SegmentSpecifier] = []
    position = 0
    while True:
        segment, position = _Parser(text, position).segment()
        segments.append(segment)
        if position == len(text):
            return ResourceSpecifier(text=text, segments=tuple(segments))
        position += 1  # skip the ':' between segments


def starts_segment(text: str, position: int) -> bool:
    """Whether a resource segment (`type/` or a bare `acct`) begins at `position`."""
    end = position
    while end < len(text) and text[end] not in _TYPE_STOPS:
        end += 1
    kind = text[position:end]
    if kind not in RESOURCE_TYPES:
        return False
    return text[end : end + 1] == "/" or kind == "acct"


class _Parser:
    """Reads one segment of a specifier starting at `position`."""

    def __init__(self, text: str, position: int) -> None:
        self.text = text
        self.position = position

    def segment(self) -> tuple[SegmentSpecifier, int]:
        kind = self._type()
        key = self._key(kind)
        tags: list[Glob] = []
        critical: bool | None = None
        if self._peek() == ";":
            self.position += 1
            tags, critical = self._items(kind)
        return SegmentSpecifier(kind, key, tuple(tags), critical), self.position

    def _peek(self) -> str:
        return self.text[self.position : self.position + 1]

    def _read_until(self, stops: str) -> str:
        start = self.position
        while self.position < len(self.text) and self.text[self.position] not in stops:
            self.position += 1
        return self.text[start : self.position]

    def _type(self) -> str:
        start = self.position
        kind = self._read_until(_TYPE_STOPS)
        if not kind:
            raise SpecifierError("expected a resource type", start)
        if kind not in RESOURCE_TYPES:
            raise SpecifierError(f"unknown resource type {kind!r}", start)
        return kind

    def _key(self, kind: str) -> Glob:
        if self._peek() != "/":
            if kind == "acct":
                return Glob("*")
            raise SpecifierError(f"expected '/' and a key after {kind!r}", self.position)
        self.position += 1
        start = self.position
        key = self._read_until(":;")
        if not key:
            raise SpecifierError(f"expected a key after '{kind}/'", start)
        if "{" in key or "}" in key or "," in key:
            raise SpecifierError(f"unexpected character in key {key!r}", start)
        return Glob(key)

    def _items(self, kind: str) -> tuple[list[Glob], bool | None]:
        tags: list[Glob] = []
        critical: bool | None = None
        while True:
            if self._peek() == "{":
                critical = self._attribute(kind, critical)
            else:
                tags.append(self._tag())
            if self._peek() != ",":
                return tags, critical
            self.position += 1

    def _tag(self) -> Glob:
        start = self.position
        while self.position < len(self.text) and self.text[self.position] != ",":
            char = self.text[self.position]
            if char == ":" and starts_segment(self.text, self.position + 1):
                break
            if char in "{};":
                raise SpecifierError(f"unexpected {char!r} in tag", self.position)
            self.position += 1
        if self.position == start:
            raise SpecifierError("expected a tag or {attribute:value}", start)
        return Glob(self.text[start : self.position], fold_case=True)

    def _attribute(self, kind: str, critical: bool | None) -> bool:
        start = self.position
        end = self.text.find("}", start)
        if end < 0:
            raise SpecifierError("unclosed '{'", start)
        name, colon, value = self.text[start + 1 : end].partition(":")
        if not colon:
            raise SpecifierError("expected {attribute:value}", start)
        if name != "critical":
            raise SpecifierError(f"unknown attribute {name!r}; only 'critical'", start + 1)
        if kind != "env":
            raise SpecifierError("attribute 'critical' applies only to env", start + 1)
        if critical is not None:
            raise SpecifierError("attribute 'critical' given twice", start + 1)
        if value not in _CRITICAL_VALUES:
            raise SpecifierError(
                "attribute 'critical' must be true or false", start + 2 + len(name)
            )
        self.position = end + 1
        if self._peek() not in ("", ",", ":"):
            raise SpecifierError("expected ',' or ':' after '}'", self.position)
        return _CRITICAL_VALUES[value]
