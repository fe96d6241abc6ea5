"""Unleash's free-text event search: `query` as PostgreSQL's `ILIKE '%query%'` over the
text of an event's `data`, `tags` and `preData` columns.

Unleash matches `data::text`, `tags::text` and `pre_data::text`. Its `data` and `tags`
columns are `json`, which keep the text JavaScript wrote (compact, keys in their order);
`pre_data` is `jsonb`, whose text PostgreSQL writes itself: `{"a": 1, "bb": [1, 2]}`,
keys by length then bytes, a space after each `:` and `,`. So `"name": "x` matches an
event whose preData has that name, and `"name":"x` one whose data has it. An event
without data (null) matches nothing there; one without tags reads as `[]`, as Unleash's
column default. The query is a LIKE pattern: `%` matches any text, `_` any one
character, `\\` makes the next character literal; case is ignored (Python's `str.lower`
standing for the database's).

Numbers are written as Python writes them, which differs from JavaScript and PostgreSQL
only for floats with an exponent (`1e-07`); non-ASCII text is lower-cased by Python's
rules, the database's locale may differ for a few characters.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

MAX_QUERY_LENGTH: Final = 1000  # characters of `query` (Unleash sets none)
# characters that separate JSON tokens: around them the stored event and PostgreSQL's
# jsonb text may differ (spaces, key order), so the cheap test below splits at them
_SEPARATORS: Final = re.compile(r"[\s,:{}\[\]]+|[^\x00-\x7f]+")
# a query without wildcards, escapes, quotes or separators lies within one JSON token
# (a key, a string, a number): key order and spacing cannot change whether it matches
_PLAIN: Final = re.compile(r'[^%_\\\s,:{}\[\]"]+')


def json_text(value: Any) -> str:
    """The text of a `json` column: compact JSON, as JavaScript's JSON.stringify writes it."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def _jsonb_order(value: Any) -> Any:
    if isinstance(value, Mapping):
        ordered = sorted(value, key=lambda name: (len(name.encode()), name.encode()))
        return {name: _jsonb_order(value[name]) for name in ordered}
    if isinstance(value, list):
        return [_jsonb_order(item) for item in value]
    return value


def jsonb_text(value: Any) -> str:
    """The text PostgreSQL writes for a `jsonb` value: keys by length then bytes, spaced."""
    return json.dumps(
        _jsonb_order(value), ensure_ascii=False, separators=(", ", ": "), allow_nan=False
    )


def searched_texts(event: Mapping[str, Any]) -> list[str]:
    """`data::text`, `tags::text` and `pre_data::text` of an event (those that are not NULL)."""
    texts = []
    if event.get("data") is not None:
        texts.append(json_text(event["data"]))
    tags = event.get("tags")
    texts.append("[]" if tags is None else json_text(tags))
    if event.get("preData") is not None:
        texts.append(jsonb_text(event["preData"]))
    return texts


@dataclass(frozen=True)
class _Piece:
    """A run of a LIKE pattern between two `%`: characters, `_` among them when `wild`."""

    literal: str  # characters to find, `\0` standing for each `_` when `wild` is set
    wild: bool
    search: Callable[[str, int], int]  # first match at or after a position, or -1


def _finder(chars: list[str | None]) -> _Piece:
    if None not in chars:
        literal = "".join(c for c in chars if c is not None)
        return _Piece(literal, False, lambda text, start: text.find(literal, start))
    regex = re.compile("".join("." if c is None else re.escape(c) for c in chars), re.DOTALL)

    def search(text: str, start: int) -> int:
        found = regex.search(text, start)
        return -1 if found is None else found.start()

    return _Piece("".join(c or "\0" for c in chars), True, search)


@dataclass(frozen=True)
class TextQuery:
    """`ILIKE '%query%'`, compiled; `matches` takes an event, `may_match` its stored JSON."""

    query: str
    pieces: tuple[_Piece, ...]  # between `%`s, in order
    anchored_end: bool  # the last piece must end the text (the query ended in `\\`)
    needles: tuple[str, ...]  # runs every matching event's stored JSON holds, lower-cased

    @classmethod
    def compile(cls, query: str) -> TextQuery:
        chars: list[list[str | None]] = [[]]
        pattern, i = f"%{query.lower()}%", 0
        while i < len(pattern):
            char = pattern[i]
            if char == "\\" and i + 1 < len(pattern):
                chars[-1].append(pattern[i + 1])
                i += 2
                continue
            if char == "%":
                chars.append([])
            else:
                chars[-1].append(None if char == "_" else char)
            i += 1
        anchored_end = bool(chars[-1])  # the closing `%` was escaped
        pieces = tuple(_finder(run) for run in chars if run)
        runs = (p.literal.replace("\0", " ") if p.wild else p.literal for p in pieces)
        needles = tuple(n for run in runs for n in _SEPARATORS.split(run) if n)
        return cls(query, pieces, anchored_end, needles)

    def _matches_text(self, text: str) -> bool:
        position = 0
        pieces, last = list(self.pieces), None
        if self.anchored_end:
            last = pieces.pop()
        for piece in pieces:
            found = piece.search(text, position)
            if found < 0:
                return False
            position = found + len(piece.literal)
        if last is not None:
            tail = len(text) - len(last.literal)
            return tail >= position and last.search(text, tail) == tail
        return True

    def may_match(self, stored_json: str) -> bool:
        """False only when no text of the event can match: a cheap test on its stored JSON."""
        lowered = stored_json.lower()
        return all(needle in lowered for needle in self.needles)

    def matches(self, event: Mapping[str, Any]) -> bool:
        """Whether Unleash's search would find `event` for this query."""
        if _PLAIN.fullmatch(self.query):
            word = self.query.lower()
            values = (event.get("data"), event.get("tags"), event.get("preData"))
            return any(word in json_text(value).lower() for value in values if value is not None)
        return any(self._matches_text(text.lower()) for text in searched_texts(event))
