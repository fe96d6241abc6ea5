"""Unleash's event on the wire: the model `POST /api/events` accepts, and its validation.

The model is a TypedDict, not a BaseModel: validation hands back plain dicts that keep
every field the producer sent (unknown ones included), so an event is stored exactly as
posted. Validation is strict: `"5"` is not an integer and `5` is not a string.

What a producer sends is bounded (docs/ingest.md): names (`featureName`, `project`,
`environment`, `createdBy`, `groupType`, `groupId`, tag types and values) to
MAX_NAME_LENGTH characters, as Unleash's own columns; MAX_TAGS tags per event;
`createdAt` from the Unix epoch to MAX_CLOCK_SKEW ahead of this machine's clock, so no
event escapes retention; nesting to the JSON parser's 200 levels; and every number to
what a 64-bit float holds (`1e999999` would be stored as null; NaN and Infinity are not
JSON).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterator
from datetime import timedelta
from itertools import islice
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
from pydantic_core import from_json
from typing_extensions import TypedDict  # pydantic needs it on Python < 3.12

from relay.clock import now_ms, rfc3339_ms
from relay.errors import FieldProblem, InvalidRequestError, PayloadTooLargeError, attribute_of

MAX_BATCH: Final = 1000
MAX_NAME_LENGTH: Final = 255  # Unleash's varchar(255) for feature, project, user names
MAX_TAGS: Final = 100  # per event
# a createdAt further ahead than this would outlive the retention; the producer's clock is wrong
MAX_CLOCK_SKEW: Final = timedelta(days=1)
MAX_PROBLEMS: Final = 10  # out-of-range numbers named per request

_MILLISECOND = timedelta(milliseconds=1)
_SKEW_MS = MAX_CLOCK_SKEW // _MILLISECOND


def _check_created_at(value: str | None) -> str | None:
    if value is None:
        return value
    moment_ms = rfc3339_ms(value)
    if moment_ms < 0:
        raise ValueError("must not be before 1970-01-01T00:00:00Z")
    if moment_ms > now_ms() + _SKEW_MS:
        raise ValueError(
            f"is more than {MAX_CLOCK_SKEW} ahead of the relay's clock; check the producer's clock"
        )
    return value


def _check_producer_id(value: Any) -> Any:
    # a union would report one error per member; one clear reason is better
    valid_int = isinstance(value, int) and not isinstance(value, bool)
    valid_str = isinstance(value, str) and 0 < len(value) <= 200
    if value is not None and not (valid_int or valid_str):
        raise ValueError("must be an integer or a string of 1 to 200 characters")
    return value


_STRICT_OPEN = ConfigDict(extra="allow", strict=True)
Name = Annotated[str, Field(max_length=MAX_NAME_LENGTH)]
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

    type: Name
    value: Name


@with_config(_STRICT_OPEN)
class UnleashEvent(TypedDict):
    """An event as Unleash 8's webhook addon sends it; fields not listed here are kept too."""

    id: NotRequired[Annotated[Any, AfterValidator(_check_producer_id), WithJsonSchema(_ID_SCHEMA)]]
    type: Annotated[str, Field(min_length=1, max_length=200)]
    createdBy: Name
    createdAt: NotRequired[
        Annotated[str | None, AfterValidator(_check_created_at), WithJsonSchema(_TIME_SCHEMA)]
    ]
    createdByUserId: NotRequired[int | None]
    data: NotRequired[Any]
    preData: NotRequired[Any]
    tags: NotRequired[Annotated[list[Tag], Field(max_length=MAX_TAGS)] | None]
    featureName: NotRequired[Name | None]
    project: NotRequired[Name | None]
    environment: NotRequired[Name | None]
    groupType: NotRequired[Name | None]
    groupId: NotRequired[Name | None]


def _check_numbers(event: UnleashEvent) -> UnleashEvent:
    for where in _numbers_out_of_range(event):
        raise ValueError(f"{attribute_of(where)}: {_OUT_OF_RANGE}")
    return event


EVENT: Final = TypeAdapter(UnleashEvent)
EVENTS: Final = TypeAdapter(list[UnleashEvent])
# events decoded elsewhere (a pulled page, parsed whole) come without their bytes to check
_DECODED_EVENT: Final = TypeAdapter(Annotated[UnleashEvent, AfterValidator(_check_numbers)])


def parse_events(body: bytes) -> list[dict[str, Any]]:
    """The events of a request body (one event or an array of 1 to MAX_BATCH), all valid.

    Raises InvalidRequestError naming every bad field (`[3].createdAt`, or `createdAt`
    for a single event), or PayloadTooLargeError for more than MAX_BATCH events.
    """
    if b"NaN" in body or b"Infinity" in body:  # the JSON parser below would accept them
        _refuse_non_json_constants(body)
    start = body.lstrip()[:1]
    if start == b"[":
        events = _parse_batch(body)
        if _may_overflow(body):
            _refuse_out_of_range(events, batch=True)
        return events
    if start == b"{":
        try:
            event = dict(EVENT.validate_json(body))
        except ValidationError as exc:
            raise _invalid(exc) from None
        if _may_overflow(body):
            _refuse_out_of_range([event], batch=False)
        return [event]
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
            _check_batch_size(len(from_json(body)))
        raise _invalid(exc) from None
    _check_batch_size(len(events))
    if not events:
        raise InvalidRequestError(
            "empty array: send at least one event", [FieldProblem("body", "array is empty")]
        )
    return cast(list[dict[str, Any]], events)  # TypedDicts are plain dicts, new ones


def validate_event(raw: object) -> dict[str, Any]:
    """One event already decoded from JSON (pulled from Unleash); ValidationError if bad."""
    return dict(_DECODED_EVENT.validate_python(raw))


# Which bytes could spell a number no 64-bit float holds (above 1.8e308, integers too): an
# exponent of three digits or more, or a run of 200 digits (an exponent below 100 on fewer than
# 200 digits before the point stays under 1e299). Every body is tested, so the test is
# a translate and two substring searches in C (signs dropped: `e+400` reads `e400`),
# about 1 us per 400 bytes; only a hit makes the events be walked.
_NUMBER_SHAPE: Final = bytes.maketrans(b"123456789E", b"000000000e")
_DIGIT_RUN: Final = b"0" * 200
_OUT_OF_RANGE: Final = "number out of range: JSON numbers must fit a 64-bit float"
_FLOAT_MAX: Final = sys.float_info.max


def _may_overflow(body: bytes) -> bool:
    shape = body.translate(_NUMBER_SHAPE, b"+-")
    return b"e000" in shape or _DIGIT_RUN in shape


def _refuse_out_of_range(events: list[dict[str, Any]], *, batch: bool) -> None:
    located = (
        (index, *where) if batch else where
        for index, event in enumerate(events)
        for where in _numbers_out_of_range(event)
    )
    problems = [
        FieldProblem(attribute_of(loc), _OUT_OF_RANGE) for loc in islice(located, MAX_PROBLEMS)
    ]
    if problems:
        message = "; ".join(f"{p.attribute}: {p.reason}" for p in problems[:5])
        raise InvalidRequestError(f"invalid events, none recorded: {message}", problems)


_Trail = tuple[Any, int | str] | None  # (parent's trail, key): a path, built only when needed


def _numbers_out_of_range(value: Any) -> Iterator[tuple[int | str, ...]]:
    """Where in a decoded JSON value a float is infinite or NaN, or an integer is beyond
    a double's range (parsers keep it exact; a consumer reading JSON numbers as doubles
    would not), in document order."""
    stack: list[tuple[Any, _Trail]] = [(value, None)]
    while stack:  # not recursive: the value may be nested as deep as its parser allowed
        item, trail = stack.pop()
        if isinstance(item, float):
            if not math.isfinite(item):
                yield _path(trail)
        elif isinstance(item, int):
            if abs(item) > _FLOAT_MAX:  # exact: Python compares an int and a float exactly
                yield _path(trail)
        elif isinstance(item, dict):
            stack.extend((v, (trail, k)) for k, v in reversed(item.items()))
        elif isinstance(item, list):
            stack.extend((item[i], (trail, i)) for i in range(len(item) - 1, -1, -1))


def _path(trail: _Trail) -> tuple[int | str, ...]:
    parts: list[int | str] = []
    while trail is not None:
        trail, part = trail
        parts.append(part)
    return tuple(reversed(parts))


def _check_batch_size(count: int) -> None:
    if count > MAX_BATCH:
        raise PayloadTooLargeError(
            f"{count} events in one request; send at most {MAX_BATCH} per request"
        )


def _is_json_invalid(exc: ValidationError) -> bool:
    return any(error["type"] == "json_invalid" for error in exc.errors(include_url=False))


def _raise_if_malformed(body: bytes) -> None:
    try:
        from_json(body)  # not json.loads: nesting is bounded, no RecursionError
    except ValueError as exc:
        raise InvalidRequestError(
            "malformed JSON", [FieldProblem("body", f"malformed JSON: {exc}")]
        ) from None


def _refuse_non_json_constants(body: bytes) -> None:
    # pydantic-core's parser, not json.loads: its nesting is bounded, no RecursionError
    try:
        from_json(body, allow_inf_nan=False)
    except ValueError as exc:
        try:
            from_json(body)
        except ValueError:
            return  # malformed anyway: the parser below says where
        reason = f"malformed JSON: NaN and Infinity are not JSON ({exc})"
        raise InvalidRequestError("malformed JSON", [FieldProblem("body", reason)]) from None


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


def _reason(message: str) -> str:
    return message.removeprefix("Value error, ")
