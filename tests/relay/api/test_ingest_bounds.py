"""`POST /api/events` bounds what a producer sends: 400 naming the attribute, never a 500."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from relay.api.app import create_app
from relay.ingest.unleash_event import MAX_CLOCK_SKEW, MAX_NAME_LENGTH, MAX_TAGS
from relay.settings import Settings
from relay.store import keys
from relay.store.client import Redis

EVENT: dict[str, Any] = {
    "id": 7,
    "type": "feature-environment-enabled",
    "createdBy": "admin@example.com",
    "createdAt": "2026-01-05T10:00:00.000Z",
    "data": {"name": "checkout", "enabled": True},
    "preData": None,
    "tags": [{"type": "simple", "value": "team-a"}],
    "featureName": "checkout",
    "project": "default",
    "environment": "production",
}
DEEP = 100_000

Post = Callable[[bytes], Any]  # TestClient.post, whose Response type is its own


@pytest.fixture(params=["fast path", "FastAPI route"])
def post(request: pytest.FixtureRequest, settings: Settings, redis_client: Redis) -> Iterator[Post]:
    """POST a raw body as the admin, through the ingest fast path or the FastAPI route."""
    # behind a root_path the fast path passes the request on to the route
    root = "" if request.param == "fast path" else "/relay"
    headers = {"Authorization": settings.admin_token or "", "Content-Type": "application/json"}
    with TestClient(create_app(settings, redis=redis_client), root_path=root) as client:
        yield lambda body: client.post(f"{root}/api/events", content=body, headers=headers)


def _body(value: Any) -> bytes:
    return json.dumps(value).encode()


def _refused(response: Any) -> list[str]:
    """The attributes a 400 in the ValidationFailedErrorRep shape names."""
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["code"] == "invalid_request" and body["message"]
    assert all(set(error) == {"attribute", "reason"} for error in body["errors"])
    return [error["attribute"] for error in body["errors"]]


def _nothing_stored(client: Redis) -> bool:
    return not client.exists(keys.EVENTS_ALL, keys.OUTBOX, keys.EVENT_SEQ)


NAMES = ["featureName", "project", "environment", "createdBy", "groupType", "groupId"]


@pytest.mark.parametrize("field", NAMES)
def test_names_longer_than_the_limit_are_refused(
    post: Post, redis_client: Redis, field: str
) -> None:
    """A name of 256 characters gets a 400 naming it; 255 is accepted (Unleash's columns)."""
    too_long = {**EVENT, field: "n" * (MAX_NAME_LENGTH + 1)}
    assert _refused(post(_body(too_long))) == [field]
    assert _refused(post(_body([EVENT, too_long]))) == [f"[1].{field}"]
    assert _nothing_stored(redis_client)
    assert post(_body({**EVENT, field: "n" * MAX_NAME_LENGTH})).status_code == 202


@pytest.mark.parametrize("part", ["type", "value"])
def test_tag_types_and_values_longer_than_the_limit_are_refused(post: Post, part: str) -> None:
    """A tag's type or value past the limit is named by its index."""
    tag = {"type": "simple", "value": "team-a", part: "t" * (MAX_NAME_LENGTH + 1)}
    tags = [{"type": "simple", "value": "ok"}, tag]
    assert _refused(post(_body({**EVENT, "tags": tags}))) == [f"tags[1].{part}"]


def test_the_number_of_tags_is_bounded(post: Post, redis_client: Redis) -> None:
    """More than MAX_TAGS tags on one event is refused; exactly MAX_TAGS is accepted."""
    tags = [{"type": "simple", "value": f"tag-{n}"} for n in range(MAX_TAGS + 1)]
    assert _refused(post(_body({**EVENT, "tags": tags}))) == ["tags"]
    assert _nothing_stored(redis_client)
    assert post(_body({**EVENT, "tags": tags[:MAX_TAGS]})).status_code == 202


def test_the_event_type_stays_bounded(post: Post) -> None:
    """`type` keeps its bound of 200 characters."""
    assert _refused(post(_body({**EVENT, "type": "t" * 201}))) == ["type"]


DEEP_BODIES = {
    "array of arrays": b"[" * DEEP + b"]" * DEEP,
    "object of objects": b'{"a":' * DEEP + b"1" + b"}" * DEEP,
    "deep data": _body(EVENT)[:-1] + b',"extra":' + b"[" * DEEP + b"]" * DEEP + b"}",
    "deep with NaN": b"[" * DEEP + b"NaN" + b"]" * DEEP,
    "deep with Infinity in a string": b'[{"createdBy": "Infinity", "data":'
    + b"[" * DEEP
    + b"]" * DEEP
    + b"}]",
    "deep after a BOM": "\ufeff".encode() + b"[" * DEEP + b"]" * DEEP,
    "deep in UTF-16": ("[" * DEEP + "]" * DEEP).encode("utf-16-be"),
    "deep in UTF-16 with NaN": ("[" * DEEP + "NaN" + "]" * DEEP).encode("utf-16-be"),
    "unclosed": b"[" * DEEP,
}


@pytest.mark.parametrize("body", DEEP_BODIES.values(), ids=DEEP_BODIES.keys())
def test_deeply_nested_json_is_a_400_not_a_500(
    post: Post, redis_client: Redis, body: bytes
) -> None:
    """100,000 levels of nesting, however encoded, is refused as malformed JSON."""
    assert _refused(post(body)) == ["body"]
    assert _nothing_stored(redis_client)


def test_nesting_within_the_parser_limit_is_kept(post: Post) -> None:
    """Data nested 100 levels deep is an ordinary event."""
    assert post(_body({**EVENT, "data": json.loads("[" * 100 + "]" * 100)})).status_code == 202


OUT_OF_RANGE = [
    "1e999999",
    "-1e999999",
    "1e309",
    "1" + "0" * 400 + ".5",
    "1" + "0" * 250 + "e99",
    "1" + "0" * 400,  # integers too: JSON numbers are bounded to a double's range
    "-" + "9" * 309,
]
PLACES = {
    "data": ('{"value": %s}', "data.value"),
    "preData": ('{"list": [1, 2, %s]}', "preData.list[2]"),
    "unknownField": ("%s", "unknownField"),
    "tags": ('[{"type": "simple", "value": "a", "weight": %s}]', "tags[0].weight"),
}


@pytest.mark.parametrize("number", OUT_OF_RANGE)
@pytest.mark.parametrize(("field", "place"), PLACES.items(), ids=PLACES.keys())
def test_numbers_out_of_range_are_refused_where_they_are(
    post: Post, redis_client: Redis, number: str, field: str, place: tuple[str, str]
) -> None:
    """A number no double holds (stored before as null) is a 400 naming where it is."""
    template, attribute = place
    others = {key: value for key, value in EVENT.items() if key != field}
    event = _body(others)[:-1] + f', "{field}": {template % number}}}'.encode()
    assert _refused(post(event)) == [attribute]
    assert _refused(post(b"[" + _body(EVENT) + b"," + event + b"]")) == [f"[1].{attribute}"]
    assert _nothing_stored(redis_client)


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_literals_are_refused(post: Post, literal: str) -> None:
    """The non-JSON constants Python's parsers accept are malformed JSON here."""
    assert _refused(post(_body(EVENT)[:-1] + f', "x": [{literal}]}}'.encode())) == ["body"]


def test_numbers_that_only_look_large_are_accepted(post: Post) -> None:
    """Big but finite numbers, tiny ones and digits inside strings are fine."""
    data = {"max": 1.7976931348623157e308, "tiny": 5e-324, "id": "e1234", "long": "9" * 500}
    response = post(_body({**EVENT, "data": data, "big": 10**300}))
    assert response.status_code == 202, response.text


def _stamp(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def test_created_at_in_the_future_beyond_the_skew_is_refused(
    post: Post, redis_client: Redis
) -> None:
    """createdAt more than MAX_CLOCK_SKEW ahead would escape retention: 400 on createdAt."""
    now = datetime.now(UTC)
    future = _stamp(now + MAX_CLOCK_SKEW + timedelta(minutes=5))
    assert _refused(post(_body({**EVENT, "createdAt": future}))) == ["createdAt"]
    assert _refused(post(_body([EVENT, {**EVENT, "createdAt": future}]))) == ["[1].createdAt"]
    assert _nothing_stored(redis_client)
    soon = _stamp(now + MAX_CLOCK_SKEW - timedelta(minutes=5))
    assert post(_body({**EVENT, "createdAt": soon})).status_code == 202


@pytest.mark.parametrize(
    "stamp",
    [
        "9999-12-31T23:59:59.999Z",
        "9999-12-31T23:59:59.999-05:00",  # year 10000 in UTC
        "0001-01-01T00:00:00+05:00",  # year 0 in UTC
        "0001-01-01T00:00:00Z",
        "1969-12-31T23:59:59.999Z",
        "0000-01-01T00:00:00Z",
        "-0001-01-01T00:00:00Z",
        "+10000-01-01T00:00:00Z",
        "2026-01-05T10:00:00." + "0" * 100_000 + "Z",  # would sit in the parser's cache
    ],
)
def test_created_at_far_from_now_is_a_400_not_a_500(post: Post, stamp: str) -> None:
    """Year 9999, year 1, times before 1970 and huge fractions are refused, naming createdAt."""
    assert _refused(post(_body({**EVENT, "createdAt": stamp}))) == ["createdAt"]


def test_the_unix_epoch_is_accepted(post: Post) -> None:
    """1970-01-01T00:00:00Z, the earliest createdAt, is recorded."""
    assert post(_body({**EVENT, "createdAt": "1970-01-01T00:00:00Z"})).status_code == 202
