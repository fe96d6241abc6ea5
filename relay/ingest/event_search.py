"""Unleash 8's event search over the recorded events (`GET /api/admin/search/events`).

Filters combine with AND; a filter's values (`IS_ANY_OF`) with OR. The indexes answer a
createdAt window, projects, features and relay ids (relay/store/event_search.py); the
other filters (type, createdByUserId, environment, groupId, the free text) are checked on
each candidate's stored JSON, newest first: a substring test first, then, for the events
that pass it, the parsed event. That check is bounded: past DOCUMENTS_MAX units of work
(an event read: 1, plus 1 per 4 KiB of it, plus 2 if it had to be parsed) or TIME_LIMIT
seconds, the search stops and says so (`complete=False`). Its page is then the matches
among the events it read (the page is exact when it filled before the stop), and its total
counts those matches only.

Measured on 1,000,000 recorded events (docs/ingest.md, "Event search"): a stored event
costs about 6 us to read and test (its size, its JSON, the substring test), so the time
limit stops a search at about the newest 25,000 candidates on the 2-core development
machine, before DOCUMENTS_MAX.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from pydantic_core import from_json

from relay.ingest.event_text import TextQuery
from relay.store import event_search as index
from relay.store.client import Redis
from relay.store.event_search import CandidateStream, IndexedFilter
from relay.store.events import PAGE_MAX_BYTES

DOCUMENTS_MAX: Final = 40_000  # units of work checking stored events (see above)
TIME_LIMIT: Final = 0.15  # seconds of checking stored events, whatever the units
CHUNK: Final = 1000  # candidates read at a time
READ_BYTES: Final = 8 * 1024 * 1024  # stored JSON read at a time, at most (one event always)
_PLAIN: Final = re.compile(r'[^"\\\x00-\x1f\x7f]*')  # written alike by every JSON encoder


@dataclass(frozen=True)
class EventQuery:
    """A search: each tuple holds a filter's values (empty: no filter)."""

    text: str = ""  # ILIKE '%text%' over data, tags and preData ('' = none)
    ids: tuple[int, ...] = ()
    group_ids: tuple[str, ...] = ()
    features: tuple[str, ...] = ()
    projects: tuple[str, ...] = ()
    types: tuple[str, ...] = ()
    created_by: tuple[int, ...] = ()  # createdByUserId
    environments: tuple[str, ...] = ()
    start_ms: int | None = None  # createdAt at or after
    end_ms: int | None = None  # createdAt before
    offset: int = 0
    limit: int = 50


@dataclass(frozen=True)
class SearchResult:
    """The page of events (as recorded), newest first, and how many match in all."""

    events: list[dict[str, Any]]
    total: int  # exact when complete, else the matches among the events examined
    complete: bool = True
    searched_back_to_ms: int | None = None  # createdAt of the oldest event examined, if not


def _needle(name: str, value: str) -> str | None:
    """`"name":"value"` as the stored JSON holds it, when every encoder writes it alike."""
    return f'"{name}":"{value}"' if _PLAIN.fullmatch(value) else None


@dataclass(frozen=True)
class _DocumentFilter:
    """The filters checked on the stored event; `needles`: for each filter, strings one of
    which the stored JSON of a match holds (a cheap test before parsing it)."""

    types: frozenset[str]
    created_by: frozenset[int]
    environments: frozenset[str]
    group_ids: frozenset[str]
    text: TextQuery | None
    needles: tuple[tuple[str, ...], ...] = field(default=())

    @classmethod
    def of(cls, query: EventQuery) -> _DocumentFilter | None:
        text = TextQuery.compile(query.text) if query.text else None
        facets = (query.types, query.created_by, query.environments, query.group_ids)
        if text is None and not any(facets):
            return None
        needles = []
        for name, values in (
            ("type", query.types),
            ("environment", query.environments),
            ("groupId", query.group_ids),
        ):
            found = [_needle(name, value) for value in values]
            if values and None not in found:
                needles.append(tuple(n for n in found if n is not None))
        if query.created_by:
            ends = (",", "}")
            needles.append(
                tuple(f'"createdByUserId":{n}{end}' for n in query.created_by for end in ends)
            )
        return cls(
            frozenset(query.types),
            frozenset(query.created_by),
            frozenset(query.environments),
            frozenset(query.group_ids),
            text,
            tuple(needles),
        )

    def may_match(self, stored_json: str) -> bool:
        if not all(any(n in stored_json for n in options) for options in self.needles):
            return False
        return self.text is None or self.text.may_match(stored_json)

    def matches(self, event: Mapping[str, Any]) -> bool:
        user = event.get("createdByUserId")
        return (
            (not self.types or event.get("type") in self.types)
            and (not self.created_by or (_is_int(user) and user in self.created_by))
            and (not self.environments or _text_in(event.get("environment"), self.environments))
            and (not self.group_ids or _text_in(event.get("groupId"), self.group_ids))
            and (self.text is None or self.text.matches(event))
        )


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _text_in(value: Any, values: frozenset[str]) -> bool:
    return isinstance(value, str) and value in values


def _parsed(stored: Iterable[tuple[int, str | None]]) -> list[dict[str, Any]]:
    return [from_json(text) for _, text in stored if text is not None]


def search(
    client: Redis,
    query: EventQuery,
    *,
    documents_max: int = DOCUMENTS_MAX,
    time_limit: float = TIME_LIMIT,
    examine_max: int = index.EXAMINE_MAX,
) -> SearchResult:
    """The events matching `query`, newest first (createdAt, then relay id), a page of them."""
    indexed = IndexedFilter(query.start_ms, query.end_ms, query.projects, query.features, query.ids)
    documents = _DocumentFilter.of(query)
    if documents is None:
        page = index.search_page(
            client, indexed, offset=query.offset, limit=query.limit, examine_max=examine_max
        )
        stored = index.fetch_documents(client, page.ids, max_bytes=PAGE_MAX_BYTES)
        return SearchResult(_parsed(stored), page.total, page.complete, page.searched_back_to_ms)
    candidates = CandidateStream(
        client, indexed, chunk=CHUNK, examine_max=examine_max, wanted=documents_max
    )
    return _Scan(client, query, documents, documents_max, time_limit).run(candidates)


@dataclass
class _Scan:
    """Candidates checked on their stored JSON, newest first, within the work bound."""

    client: Redis
    query: EventQuery
    documents: _DocumentFilter
    units_max: int
    time_limit: float
    page: list[dict[str, Any]] = field(default_factory=list)
    page_bytes: int = 0
    matched: int = 0
    units: int = 0
    last_examined: int | None = None

    def run(self, candidates: CandidateStream) -> SearchResult:
        deadline = time.monotonic() + self.time_limit
        for chunk in candidates:
            for stored in index.read_documents(self.client, chunk, max_bytes=READ_BYTES):
                if self.units >= self.units_max or time.monotonic() > deadline:
                    return self._stopped()
                for _, text in stored:
                    if text is not None:
                        self._check_one(text)
                self.last_examined = stored[-1][0]
        if not candidates.exhausted:
            self.last_examined = _last_id(candidates.last_examined, self.last_examined)
            return self._stopped()
        return SearchResult(self.page, self.matched)

    def _check_one(self, text: str) -> None:
        self.units += 1 + len(text) // 4096
        if not self.documents.may_match(text):
            return
        self.units += 2
        event = from_json(text)
        if self.documents.matches(event):
            self._keep(event, text)

    def _keep(self, event: dict[str, Any], text: str) -> None:
        position = self.matched - self.query.offset
        self.matched += 1
        if 0 <= position < self.query.limit:
            if self.page and self.page_bytes + len(text) > PAGE_MAX_BYTES:
                return  # the answer's bound: later matches are counted, not sent
            self.page.append(event)
            self.page_bytes += len(text)

    def _stopped(self) -> SearchResult:
        oldest = (
            None
            if self.last_examined is None
            else index.created_at_ms(self.client, self.last_examined)
        )
        return SearchResult(self.page, self.matched, complete=False, searched_back_to_ms=oldest)


def _last_id(walked: str, checked: int | None) -> int | None:
    return int(walked) if walked else checked
