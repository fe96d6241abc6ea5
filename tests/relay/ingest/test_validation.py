"""The Unleash event wire model: what `POST /api/events` accepts and how it says no."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from pydantic_core import from_json

from relay.clock import rfc3339_ms
from relay.errors import InvalidRequestError, PayloadTooLargeError
from relay.ingest.unleash_event import (
    MAX_BATCH,
    MAX_NAME_LENGTH,
    MAX_PROBLEMS,
    MAX_TAGS,
    parse_events,
    validate_event,
)

FIXTURES = Path(__file__).resolve().parents[2] / "data" / "shared" / "fixtures" / "unleash"
VALID = {"type": "feature-created", "createdBy": "admin", "createdAt": "2022-05-31T13:32:20.560Z"}
OUT_OF_RANGE = "number out of range: JSON numbers must fit a 64-bit float"


def _problems(body: bytes) -> list[tuple[str, str]]:
    with pytest.raises(InvalidRequestError) as caught:
        parse_events(body)
    return [(p.attribute, p.reason) for p in caught.value.errors]


def _attributes(body: bytes) -> list[str]:
    return [attribute for attribute, _ in _problems(body)]


def test_every_unleash_fixture_event_is_accepted_unchanged() -> None:
    """Real Unleash 8.2 bodies validate to exactly what was sent, nulls and extras included."""
    lines = (FIXTURES / "unleash-8.2.0-events-sample.jsonl").read_text().splitlines()
    for line in lines:
        assert parse_events(line.encode()) == [json.loads(line)]


def test_the_words_nan_and_infinity_inside_strings_are_fine() -> None:
    """Only the bare constants are refused, not text that mentions them."""
    event = {**VALID, "data": {"description": "NaN and Infinity handling"}}
    assert parse_events(json.dumps(event).encode()) == [event]


def test_unknown_fields_and_event_types_are_kept() -> None:
    """An event type relay has never seen and fields it does not model pass through."""
    event = {**VALID, "type": "brand-new-type", "label": {"x": [1, 2.5, None]}, "ip": "::1"}
    assert parse_events(json.dumps(event).encode()) == [event]


def test_an_array_gives_every_event_in_order() -> None:
    """A batch validates to its events, in order."""
    events = [{**VALID, "id": n} for n in range(3)]
    assert parse_events(json.dumps(events).encode()) == events


@pytest.mark.parametrize("producer_id", [7, -1, "a3f1-uuid", None])
def test_producer_id_may_be_an_integer_a_string_or_null(producer_id: object) -> None:
    """The producer's `id` is any integer or a non-empty string (other producers use UUIDs)."""
    assert parse_events(json.dumps({**VALID, "id": producer_id}).encode())[0]["id"] == producer_id


def test_created_at_may_be_absent_or_null() -> None:
    """`createdAt` is optional (recording defaults it to now)."""
    without = {k: v for k, v in VALID.items() if k != "createdAt"}
    assert parse_events(json.dumps(without).encode()) == [without]
    assert parse_events(json.dumps({**VALID, "createdAt": None}).encode())[0]["createdAt"] is None


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("type", 5),
        ("type", ""),
        ("type", None),
        ("createdBy", 42),
        ("createdBy", None),
        ("createdAt", 1654000000),
        ("createdByUserId", "42"),
        ("createdByUserId", 4.5),
        ("id", True),
        ("id", 1.5),
        ("id", ""),
        ("id", {"n": 1}),
        ("featureName", 3),
        ("project", ["default"]),
        ("environment", False),
        ("groupType", 1),
        ("groupId", {}),
        ("tags", "simple:team-a"),
        ("tags", [{"type": "simple"}]),
        ("tags", [{"type": "simple", "value": 1}]),
    ],
)
def test_a_wrong_type_is_named_by_its_field(field: str, value: object) -> None:
    """Each modelled field refuses a value of the wrong type, naming the field."""
    attributes = _attributes(json.dumps({**VALID, field: value}).encode())
    assert attributes and all(a == field or a.startswith(f"{field}[") for a in attributes)


@pytest.mark.parametrize("missing", ["type", "createdBy"])
def test_type_and_created_by_are_required(missing: str) -> None:
    """An event without `type` or `createdBy` is refused."""
    event = {k: v for k, v in VALID.items() if k != missing}
    assert _problems(json.dumps(event).encode()) == [(missing, "Field required")]


@pytest.mark.parametrize(
    "stamp",
    [
        "2022-05-31",
        "2022-05-31T13:32:20",
        "31/05/2022 13:32",
        "yesterday",
        "2022-13-01T00:00:00Z",
        "2022-02-30T00:00:00Z",
        "2022-05-31T24:00:00Z",
        "2022-05-31T13:32:20.5+0100",
        "",
    ],
)
def test_created_at_must_be_rfc3339(stamp: str) -> None:
    """A `createdAt` that is not an RFC 3339 date-time is refused with a reason."""
    [(attribute, reason)] = _problems(json.dumps({**VALID, "createdAt": stamp}).encode())
    assert attribute == "createdAt"
    assert "RFC 3339" in reason or "not a valid date" in reason


def test_batch_problems_name_the_index_of_each_bad_event() -> None:
    """In a batch, each problem is `[index].field`, for every bad event."""
    events: list[dict[str, Any]] = [dict(VALID) for _ in range(5)]
    events[1]["createdAt"] = "not a time"
    events[3].pop("type")
    events[4]["createdByUserId"] = "x"
    assert _attributes(json.dumps(events).encode()) == [
        "[1].createdAt",
        "[3].type",
        "[4].createdByUserId",
    ]


@pytest.mark.parametrize(
    "body",
    [
        b'{"type": "x", "createdBy": ',
        b"{'type': 'x'}",
        b"[1, 2",
        b"nul",
        b"\xff\xfe",
        b'{"type": "x", "createdBy": "a", "data": NaN}',
        b'[{"type": "x", "createdBy": "a", "data": [-Infinity]}]',
    ],
)
def test_malformed_json_is_refused_as_such(body: bytes) -> None:
    """Bytes that are not JSON get one problem on `body` saying so."""
    [(attribute, reason)] = _problems(body)
    assert attribute == "body"
    assert reason.startswith("malformed JSON")


@pytest.mark.parametrize("body", [b"42", b'"an event"', b"null", b"true"])
def test_a_body_that_is_not_an_object_or_array_is_refused(body: bytes) -> None:
    """Valid JSON that is neither an event nor an array of events is refused."""
    assert _attributes(body) == ["body"]


def test_array_items_must_be_objects() -> None:
    """An array holding something other than events names the bad items."""
    assert _attributes(json.dumps([VALID, 3, "x"]).encode()) == ["[1]", "[2]"]


@pytest.mark.parametrize("body", [b"[]", b"  [ ] ", b"", b"   "])
def test_an_empty_array_or_body_is_refused(body: bytes) -> None:
    """Nothing to record is a bad request, not a silent success."""
    assert _attributes(body) == ["body"]


def test_more_than_the_batch_limit_is_too_large() -> None:
    """1001 events in one request is 413, even when some of them are also invalid."""
    events: list[dict[str, Any]] = [VALID] * MAX_BATCH
    assert len(parse_events(json.dumps(events).encode())) == MAX_BATCH
    with pytest.raises(PayloadTooLargeError, match="at most 1000"):
        parse_events(json.dumps([*events, VALID]).encode())
    with pytest.raises(PayloadTooLargeError):
        parse_events(json.dumps([*events, {"type": 1}]).encode())


@pytest.mark.parametrize(
    ("stamp", "expected_ms"),
    [
        ("1970-01-01T00:00:00Z", 0),
        ("1970-01-01T00:00:00.001Z", 1),
        ("2022-05-31T13:32:20.560Z", 1654003940560),
        ("2022-05-31T15:32:20.560+02:00", 1654003940560),
        ("2022-05-31t13:32:20.5604999z", 1654003940560),
        ("2022-05-31 13:32:20Z", 1654003940000),
        ("1969-12-31T23:59:59.999Z", -1),
    ],
)
def test_rfc3339_timestamps_convert_to_exact_milliseconds(stamp: str, expected_ms: int) -> None:
    """Indexes are scored by the exact millisecond (no float rounding, offsets applied)."""
    assert rfc3339_ms(stamp) == expected_ms


def _number_text() -> st.SearchStrategy[str]:
    digits = st.integers(min_value=1, max_value=400).map(lambda n: "1" + "0" * (n - 1))
    fraction = st.sampled_from(["", ".5", ".0001"])
    exponent = st.builds(
        lambda sign, n: f"e{sign}{n}" if n is not None else "",
        st.sampled_from(["", "+", "-"]),
        st.one_of(st.none(), st.integers(min_value=0, max_value=99_999)),
    )
    sign = st.sampled_from(["", "-"])
    return st.builds(lambda s, d, f, e: s + d + f + e, sign, digits, fraction, exponent)


@given(number=_number_text())
@settings(max_examples=300)
def test_a_number_is_refused_exactly_when_it_does_not_fit_a_float(number: str) -> None:
    """Whatever its spelling, a number is refused iff no 64-bit float holds it: it parses to
    an infinite float, or to an integer beyond the largest float."""
    body = f'{{"type": "x", "createdBy": "a", "data": [{number}]}}'.encode()
    value = from_json(number)
    too_big = abs(value) > sys.float_info.max if isinstance(value, int) else math.isinf(value)
    if too_big:
        assert _problems(body) == [("data[0]", OUT_OF_RANGE)]
    else:
        assert parse_events(body)[0]["data"] == [value]


def test_out_of_range_numbers_are_named_up_to_a_limit() -> None:
    """Every place is named, in document order, at most MAX_PROBLEMS of them."""
    events = [
        '{"type": "x", "createdBy": "a", "data": {"a": 1e400, "b": [1, -1e400]}}',
        '{"type": "x", "createdBy": "a", "preData": [' + ",".join(["1e999"] * 50) + "]}",
    ]
    problems = _problems(f"[{','.join(events)}]".encode())
    assert [attribute for attribute, _ in problems] == [
        "[0].data.a",
        "[0].data.b[1]",
        *(f"[1].preData[{n}]" for n in range(MAX_PROBLEMS - 2)),
    ]


PULLED_BAD = {
    "infinite data": {"data": {"x": float("inf")}},
    "NaN in preData": {"preData": [float("nan")]},
    "long feature name": {"featureName": "f" * (MAX_NAME_LENGTH + 1)},
    "long tag value": {"tags": [{"type": "simple", "value": "v" * (MAX_NAME_LENGTH + 1)}]},
    "too many tags": {"tags": [{"type": "simple", "value": str(n)} for n in range(MAX_TAGS + 1)]},
    "future createdAt": {"createdAt": "9999-12-31T23:59:59.999Z"},
    "createdAt before 1970": {"createdAt": "1969-12-31T23:59:59Z"},
}


@pytest.mark.parametrize("fields", PULLED_BAD.values(), ids=PULLED_BAD.keys())
def test_pulled_events_are_held_to_the_same_bounds(fields: dict[str, Any]) -> None:
    """An event decoded elsewhere (a pull from Unleash) fails validation the same way."""
    with pytest.raises(ValidationError):
        validate_event({**VALID, **fields})
    assert validate_event(VALID) == VALID


def test_a_nan_is_named_only_when_it_is_what_is_wrong() -> None:
    """A constant is blamed when it is the fault; otherwise the JSON error says where."""
    [(_, reason)] = _problems(b'{"type": "x", "createdBy": "a", "data": NaN}')
    assert "NaN and Infinity are not JSON" in reason
    [(_, reason)] = _problems(b'{"type": "x", "createdBy": "NaN", ')
    assert reason.startswith("malformed JSON") and "NaN" not in reason
