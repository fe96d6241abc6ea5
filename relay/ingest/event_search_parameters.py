"""The query parameters of Unleash's event search, read into an EventQuery.

Unleash 8 takes `type=IS:feature-created` or `type=IS_ANY_OF:a,b` (values split at
commas and trimmed, for `IS` too), `from`/`to` as `IS:YYYY-MM-DD` (days in UTC, both
whole days included), `offset` and `limit` (default 50, at most 1,000). Where Unleash
answers a malformed value with a 500 (`id=IS:abc`, `from=IS:2024-13-45`) or quietly
ignores it (a `limit` past 1,000 gives 50), the relay answers 400 naming the parameter;
every value is bounded (MAX_VALUES values of MAX_NAME_LENGTH characters each, `query` to
MAX_QUERY_LENGTH).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Final, TypeVar

from relay.errors import FieldProblem, InvalidRequestError
from relay.ingest.event_search import EventQuery
from relay.ingest.event_text import MAX_QUERY_LENGTH
from relay.ingest.unleash_event import MAX_NAME_LENGTH

DEFAULT_LIMIT: Final = 50
MAX_LIMIT: Final = 1000
MAX_OFFSET: Final = 10**15  # Redis refuses ranks past a 64-bit integer
MAX_VALUES: Final = 100  # values of one IS_ANY_OF
MAX_ID: Final = 2**63 - 1
# the operators Unleash 8's event search takes, then at least one character
_OPERATOR: Final = re.compile(r"(IS|IS_ANY_OF):(.+)")
_DAY: Final = re.compile(r"IS:([0-9]{4})-([0-9]{2})-([0-9]{2})")
_INTEGER: Final = re.compile(r"-?[0-9]{1,19}")
_MAX_RAW: Final = MAX_VALUES * (MAX_NAME_LENGTH + 1) + len("IS_ANY_OF:")
_DAY_MS: Final = int(timedelta(days=1).total_seconds() * 1000)

PARAMETERS: Final = (
    "query",
    "id",
    "groupId",
    "feature",
    "project",
    "type",
    "createdBy",
    "environment",
    "from",
    "to",
    "offset",
    "limit",
)

T = TypeVar("T")


def _invalid(name: str, reason: str) -> InvalidRequestError:
    return InvalidRequestError(f"{name}: {reason}", [FieldProblem(name, reason)])


def _values(name: str, raw: str | None, convert: Callable[[str], T]) -> tuple[T, ...]:
    """The values of `IS:x` or `IS_ANY_OF:a,b` (split at commas and trimmed, as Unleash)."""
    if raw is None:
        return ()
    if len(raw) > _MAX_RAW:
        raise _invalid(name, f"longer than {_MAX_RAW} characters")
    found = _OPERATOR.fullmatch(raw)
    if found is None:
        raise _invalid(name, "must be IS:<value> or IS_ANY_OF:<value>,<value>,...")
    values = [value.strip() for value in found.group(2).split(",")]
    if len(values) > MAX_VALUES:
        raise _invalid(name, f"more than {MAX_VALUES} values")
    for value in values:
        if not value:
            raise _invalid(name, "an empty value")
        if len(value) > MAX_NAME_LENGTH:
            raise _invalid(name, f"a value longer than {MAX_NAME_LENGTH} characters")
    try:
        return tuple(dict.fromkeys(convert(value) for value in values))
    except ValueError as exc:
        raise _invalid(name, str(exc)) from None


def _integer(value: str) -> int:
    if not _INTEGER.fullmatch(value) or abs(int(value)) > MAX_ID:
        raise ValueError(f"{value!r} is not an integer")
    return int(value)


def _day_ms(name: str, raw: str | None) -> int | None:
    """Midnight UTC of `IS:YYYY-MM-DD` in ms."""
    if raw is None:
        return None
    found = _DAY.fullmatch(raw)
    if found is None:
        raise _invalid(name, "must be IS:YYYY-MM-DD")
    try:
        day = date(*(int(part) for part in found.groups()))
    except ValueError as exc:
        raise _invalid(name, f"not a date: {exc}") from None
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000)


def _count(name: str, raw: str | None, *, default: int, low: int, high: int) -> int:
    if raw is None:
        return default
    digits = raw.isascii() and raw.isdigit() and len(raw) <= len(str(high))
    if not (digits and low <= int(raw) <= high):
        raise _invalid(name, f"must be an integer from {low} to {high}")
    return int(raw)


def single_values(params: Mapping[str, Sequence[str]]) -> dict[str, str]:
    """The search's parameters given once each (a 400 for one given twice)."""
    single = {}
    for name in PARAMETERS:
        given = params.get(name, ())
        if len(given) > 1:
            raise _invalid(name, "given more than once")
        if given:
            single[name] = given[0]
    return single


def event_query(params: Mapping[str, str]) -> EventQuery:
    """Read the search's query parameters (each given at most once)."""
    text = params.get("query", "")
    if len(text) > MAX_QUERY_LENGTH:
        raise _invalid("query", f"longer than {MAX_QUERY_LENGTH} characters")
    end_day = _day_ms("to", params.get("to"))
    return EventQuery(
        text=text,
        ids=_values("id", params.get("id"), _integer),
        group_ids=_values("groupId", params.get("groupId"), str),
        features=_values("feature", params.get("feature"), str),
        projects=_values("project", params.get("project"), str),
        types=_values("type", params.get("type"), str),
        created_by=_values("createdBy", params.get("createdBy"), _integer),
        environments=_values("environment", params.get("environment"), str),
        start_ms=_day_ms("from", params.get("from")),
        end_ms=None if end_day is None else end_day + _DAY_MS,
        offset=_count("offset", params.get("offset"), default=0, low=0, high=MAX_OFFSET),
        limit=_count("limit", params.get("limit"), default=DEFAULT_LIMIT, low=1, high=MAX_LIMIT),
    )
