"""Unleash's event on the wire: the model `POST /api/events` accepts, and its validation.

The model is a TypedDict, not a BaseModel: validation hands back plain dicts that keep
every field the producer sent (unknown ones included), so an event is stored exactly as
posted. Validation is strict: `"5"` is not an integer and `5` is not a string.
"""

from __future__ import annotations

import contextlib
import json
import re
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Annotated, Any, Final, NotRequired, cast

from pydantic import (
    AfterValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    WithJsonSchema,
    with_config,
)
from typing_extensions import TypedDict  # pydantic needs it on Python < 3.12

from relay.errors import FieldProblem, InvalidRequestError, PayloadTooLargeError

MAX_BATCH: Final = 1000

# RFC 3339 section 5.6 (with the space separator its note allows); the calendar is then
# checked by datetime.fromisoformat.
_RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$", re.ASCII
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MILLISECOND = timedelta(milliseconds=1)


@lru_cache(maxsize=4096)  # validation parses each createdAt, then recording needs its ms
def rfc3339_ms(text: str) -> int:
    """Milliseconds since the epoch of an RFC 3339 timestamp; ValueError when it is not one."""
    if not _RFC3339.match(text):
        raise ValueError("must be an RFC 3339 timestamp, e.g. 2022-05-31T13:32:20.560Z")
    try:
        moment = datetime.fromisoformat(text.upper())
    except ValueError as exc:
        raise ValueError(f"not a valid date or time: {exc}") from None
    return (moment - _EPOCH) // _MILLISECOND


def now_rfc3339() -> str:
    """The current time as Unleash writes it: `2022-05-31T13:32:20.560Z`."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _check_created_at(value: str | None) -> str | None:
    if value is not None:
        rfc3339_ms(value)
    return value


def _check_producer_id(value: Any) -> Any:
    # a union would report one error per member; one clear reason is better
    valid_int = isinstance(value, int) and not isinstance(value, bool)
    valid_str = isinstance(value, str) and 0 < len(value) <= 200
    if value is not None and not (valid_int or valid_str):
        raise ValueError("must be an integer or a string of 1 to 200 characters")
    return value


_STRICT_OPEN = ConfigDict(extra="allow", strict=True)
_ID_SCHEMA: dict[str, Any] = {
    "anyOf": [
        {"type": "integer"},
        {"type": "string", "minLength": 1, "maxLength": 200},
        {"type": "null"},
    ],
    "description": "the producer's event id: the dedupe key within a source",
}
_TIME_SCHEMA: dict[str, Any] = {
    "anyOf": [{"type": "string", "format": "date-time"}, {"type": "null"}],
    "description": "RFC 3339; defaults to the time of recording",
}


@with_config(_STRICT_OPEN)
class Tag(TypedDict):
    """An Unleash tag."""

    type: str
    value: str


@with_config(_STRICT_OPEN)
class UnleashEvent(TypedDict):
    """An event as Unleash 8's webhook addon sends it; fields not listed here are kept too."""

    id: NotRequired[Annotated[Any, AfterValidator(_check_producer_id), WithJsonSchema(_ID_SCHEMA)]]
    type: Annotated[str, Field(min_length=1, max_length=200)]
    createdBy: str
    createdAt: NotRequired[
        Annotated[str | None, AfterValidator(_check_created_at), WithJsonSchema(_TIME_SCHEMA)]
    ]
    createdByUserId: NotRequired[int | None]
    data: NotRequired[Any]
    preData: NotRequired[Any]
    tags: NotRequired[list[Tag] | None]
    featureName: NotRequired[str | None]
    project: NotRequired[str | None]
    environment: NotRequired[str | None]
    groupType: NotRequired[str | None]
    groupId: NotRequired[str | None]


EVENT: Final = TypeAdapter(UnleashEvent)
EVENTS: Final = TypeAdapter(list[UnleashEvent])


def parse_events(body: bytes) -> list[dict[str, Any]]:
    """The events of a request body (one event or an array of 1 to MAX_BATCH), all valid.

    Raises InvalidRequestError naming every bad field (`[3].createdAt`, or `createdAt`
    for a single event), or PayloadTooLargeError for more than MAX_BATCH events.
    """
    if b"NaN" in body or b"Infinity" in body:  # the JSON parser below would accept them
        _refuse_non_json_constants(body)
    start = body.lstrip()[:1]
    if start == b"[":
        return _parse_batch(body)
    if start == b"{":
        try:
            return [dict(EVENT.validate_json(body))]
        except ValidationError as exc:
            raise _invalid(exc) from None
    if not start:
        raise InvalidRequestError("empty body", [FieldProblem("body", "expected an event")])
    _raise_if_malformed(body)
    raise InvalidRequestError(
        "expected an event object or an array of events",
        [FieldProblem("body", "must be an object or an array of objects")],
    )


def _parse_batch(body: bytes) -> list[dict[str, Any]]:
    try:
        events = EVENTS.validate_json(body)
    except ValidationError as exc:
        # a valid JSON array of too many events is 413 even if some of them are bad
        if not _is_json_invalid(exc):
            _check_batch_size(len(json.loads(body)))
        raise _invalid(exc) from None
    _check_batch_size(len(events))
    if not events:
        raise InvalidRequestError(
            "empty array: send at least one event", [FieldProblem("body", "array is empty")]
        )
    return cast(list[dict[str, Any]], events)  # TypedDicts are plain dicts, new ones


def validate_event(raw: object) -> dict[str, Any]:
    """One event already decoded from JSON (pulled from Unleash); ValidationError if bad."""
    return dict(EVENT.validate_python(raw))


def _check_batch_size(count: int) -> None:
    if count > MAX_BATCH:
        raise PayloadTooLargeError(
            f"{count} events in one request; send at most {MAX_BATCH} per request"
        )


def _is_json_invalid(exc: ValidationError) -> bool:
    return any(error["type"] == "json_invalid" for error in exc.errors(include_url=False))


def _raise_if_malformed(body: bytes) -> None:
    try:
        json.loads(body)
    except ValueError as exc:
        raise InvalidRequestError(
            "malformed JSON", [FieldProblem("body", f"malformed JSON: {exc}")]
        ) from None


def _refuse_non_json_constants(body: bytes) -> None:
    def refuse(constant: str) -> None:
        raise InvalidRequestError(
            "malformed JSON", [FieldProblem("body", f"malformed JSON: {constant} is not JSON")]
        )

    with contextlib.suppress(ValueError):  # not JSON at all: the parser below says where
        json.loads(body, parse_constant=refuse)


def _invalid(exc: ValidationError) -> InvalidRequestError:
    errors = exc.errors(include_url=False, include_input=False)
    if _is_json_invalid(exc):
        reason = next(str(e.get("ctx", {}).get("error", e["msg"])) for e in errors)
        return InvalidRequestError(
            "malformed JSON", [FieldProblem("body", f"malformed JSON: {reason}")]
        )
    problems = [FieldProblem(attribute_of(e["loc"]), _reason(e["msg"])) for e in errors]
    message = "; ".join(f"{p.attribute}: {p.reason}" for p in problems[:5])
    if len(problems) > 5:
        message += f" (and {len(problems) - 5} more)"
    return InvalidRequestError(f"invalid events, none recorded: {message}", problems)


def attribute_of(loc: tuple[int | str, ...]) -> str:
    """`(3, 'createdAt')` -> `[3].createdAt`; `('tags', 0, 'value')` -> `tags[0].value`."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text or "body"


def _reason(message: str) -> str:
    return message.removeprefix("Value error, ")
