"""`POST /api/client/metrics`: Unleash client metrics kept per flag, environment, app and minute."""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from relay.store import keys
from relay.store.client import Redis
from relay.store.evaluation_windows import evaluation_windows, minutes_with_counts
from relay.store.evaluations import FALSE, TRUE, Variation
from relay.store.tokens import Role, create_token

MINUTE = 60_000
URL = "/api/client/metrics"


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")


def _minute_ago(minutes: int) -> int:
    """The start of the minute `minutes` ago."""
    return (int(time.time() * 1000) // MINUTE - minutes) * MINUTE


def _body(start: int, stop: int, toggles: dict[str, Any], **fields: Any) -> dict[str, Any]:
    bucket = {"start": _iso(start), "stop": _iso(stop), "toggles": toggles}
    return {"appName": "web", "instanceId": "i-1", "environment": "production", **fields} | {
        "bucket": bucket
    }


def _window(
    client: Redis, flag: str, at: int, apps: frozenset[str] | None
) -> tuple[Counter[Variation], Counter[Variation]]:
    """The production counts of the ten minutes before and after `at`."""
    minutes = minutes_with_counts(
        client, environment="production", flags=[flag], start_ms=at, stop_ms=at
    )
    [window] = evaluation_windows(
        client, environment="production", requests=[(flag, at)], apps=apps, minutes=minutes
    )
    return window


def _evaluation_keys(client: Redis) -> list[str]:
    return sorted(client.scan_iter(match="relay:evals:*"))  # type: ignore[arg-type]


def test_bucket_is_kept_per_flag_app_and_minute(
    app_client: TestClient, admin_headers: dict[str, str], redis_client: Redis
) -> None:
    """Counts land in the bucket's minute, by app and variation; the answer is 202."""
    # given
    start = _minute_ago(30)
    toggles = {"checkout": {"yes": 7, "no": 3, "variants": {"blue": 5, "green": 2}}}
    # when
    response = app_client.post(
        URL, json=_body(start, start + 50_000, toggles), headers=admin_headers
    )
    # then
    assert response.status_code == 202
    assert response.json() == {"evaluations": 17}
    stored = redis_client.hgetall(keys.evaluations("production", "checkout", start // MINUTE))
    assert stored == {
        "web\x1fbool:true": "7",
        "web\x1fbool:false": "3",
        "web\x1fvariant:blue": "5",
        "web\x1fvariant:green": "2",
    }
    assert redis_client.smembers(keys.evaluation_apps("production", "checkout")) == {"web"}
    assert redis_client.smembers(keys.app_evaluated_flags("production", "web")) == {"checkout"}


def test_bucket_straddling_minutes_is_spread_by_overlap(
    app_client: TestClient, admin_headers: dict[str, str], redis_client: Redis
) -> None:
    """A bucket over two minutes splits its counts by time spent in each (whole numbers)."""
    # given: 45 s in the first minute, 15 s in the second
    start = _minute_ago(30) + 15_000
    body = _body(start, start + 60_000, {"f": {"yes": 8, "no": 1}})
    # when
    app_client.post(URL, json=body, headers=admin_headers)
    # then
    first = redis_client.hgetall(keys.evaluations("production", "f", start // MINUTE))
    second = redis_client.hgetall(keys.evaluations("production", "f", start // MINUTE + 1))
    assert (first, second) == (
        {"web\x1fbool:true": "6", "web\x1fbool:false": "1"},
        {"web\x1fbool:true": "2"},
    )


def test_counts_add_up_and_windows_read_them_by_app(
    app_client: TestClient, admin_headers: dict[str, str], redis_client: Redis
) -> None:
    """Two apps' buckets add up; the ten-minute windows around a moment read them, per app."""
    # given
    event = _minute_ago(20) + 30_000
    before, after = event - 5 * MINUTE, event + 3 * MINUTE
    for app, at, yes in (("web", before, 2), ("web", before, 3), ("ios", after, 4)):
        body = _body(at, at + 1000, {"f": {"yes": yes, "no": 1}}, appName=app)
        assert app_client.post(URL, json=body, headers=admin_headers).status_code == 202
    # when
    all_before, all_after = _window(redis_client, "f", event, apps=None)
    web_before, web_after = _window(redis_client, "f", event, apps=frozenset({"web"}))
    # then
    assert all_before == Counter({TRUE: 5, FALSE: 2})
    assert all_after == Counter({TRUE: 4, FALSE: 1})
    assert (web_before, web_after) == (Counter({TRUE: 5, FALSE: 2}), Counter())


def test_counts_expire_after_the_retention(
    app_client: TestClient, admin_headers: dict[str, str], redis_client: Redis
) -> None:
    """Minute hashes live for the retention (30 days by default) counted from their minute."""
    start = _minute_ago(0)
    app_client.post(
        URL, json=_body(start, start + 1000, {"f": {"yes": 1, "no": 0}}), headers=admin_headers
    )
    ttl = redis_client.ttl(keys.evaluations("production", "f", start // MINUTE))
    assert 30 * 86_400 - 60 <= int(ttl) <= 30 * 86_400 + 60  # type: ignore[arg-type]


def test_buckets_older_than_the_retention_are_accepted_but_not_kept(
    app_client: TestClient, admin_headers: dict[str, str], redis_client: Redis
) -> None:
    """A bucket 31 days old would expire at once: 202 with nothing kept."""
    start = _minute_ago(31 * 24 * 60)
    response = app_client.post(
        URL, json=_body(start, start + 1000, {"f": {"yes": 1, "no": 0}}), headers=admin_headers
    )
    assert (response.status_code, response.json()) == (202, {"evaluations": 0})
    assert _evaluation_keys(redis_client) == []


def test_sdk_fields_are_ignored_and_environment_defaults(
    app_client: TestClient, admin_headers: dict[str, str], redis_client: Redis
) -> None:
    """Fields SDKs add (sdkVersion, platformName) are fine; no environment means `default`."""
    start = _minute_ago(5)
    body = _body(start, start + 1000, {"f": {"yes": 1, "no": 0}}, sdkVersion="unleash-node:5")
    del body["environment"]
    assert app_client.post(URL, json=body, headers=admin_headers).status_code == 202
    assert redis_client.exists(keys.evaluations("default", "f", start // MINUTE)) == 1


def _with(path: str, value: Any) -> dict[str, Any]:
    """A valid body with one field (dotted path) replaced; `...` removes it."""
    start = _minute_ago(5)
    body = _body(start, start + 1000, {"f": {"yes": 1, "no": 2, "variants": {"a": 1}}})
    *parents, last = path.split(".")
    target = body
    for part in parents:
        target = target[part]
    if value is ...:
        del target[last]
    else:
        target[last] = value
    return body


@pytest.mark.parametrize(
    ("body", "attribute"),
    [
        (_with("appName", ...), "appName"),
        (_with("appName", ""), "appName"),
        (_with("appName", 5), "appName"),
        (_with("bucket", ...), "bucket"),
        (_with("bucket.toggles", []), "bucket.toggles"),
        (_with("bucket.toggles.f.yes", -1), "bucket.toggles.f.yes"),
        (_with("bucket.toggles.f.no", "2"), "bucket.toggles.f.no"),
        (_with("bucket.toggles.f.yes", 1.5), "bucket.toggles.f.yes"),
        (_with("bucket.toggles.f.no", ...), "bucket.toggles.f.no"),
        (_with("bucket.toggles.f.variants", {"a": -3}), "bucket.toggles.f.variants.a"),
        (_with("bucket.start", "yesterday"), "bucket.start"),
        (_with("bucket.stop", _iso(_minute_ago(10))), "bucket"),
        (_with("bucket.stop", _iso(_minute_ago(5) + 61 * MINUTE)), "bucket"),
    ],
)
def test_bad_bodies_get_400_and_keep_nothing(
    app_client: TestClient,
    admin_headers: dict[str, str],
    redis_client: Redis,
    body: dict[str, Any],
    attribute: str,
) -> None:
    """Bad shapes, negative or non-integer counts, stop before start: 400 naming the field."""
    response = app_client.post(URL, json=body, headers=admin_headers)
    assert response.status_code == 400
    answer = response.json()
    assert answer["code"] == "invalid_request"
    assert attribute in [error["attribute"] for error in answer["errors"]]
    assert _evaluation_keys(redis_client) == []


def test_malformed_json_gets_400(app_client: TestClient, admin_headers: dict[str, str]) -> None:
    """A body that is not JSON is a 400, not a 500."""
    headers = {**admin_headers, "Content-Type": "application/json"}
    response = app_client.post(URL, content=b"{nope", headers=headers)
    assert response.status_code == 400


@pytest.mark.parametrize(("role", "status"), [(Role.INGEST, 202), (Role.READER, 403)])
def test_ingest_role_may_post_metrics(
    app_client: TestClient, redis_client: Redis, role: Role, status: int
) -> None:
    """Posting metrics is ingesting: an ingest token may, a reader token may not."""
    _, secret = create_token(redis_client, name="sdk", role=role)
    start = _minute_ago(5)
    body = _body(start, start + 1000, {"f": {"yes": 1, "no": 0}})
    assert app_client.post(URL, json=body, headers={"Authorization": secret}).status_code == status


def test_variation_names_survive_separators(
    app_client: TestClient, admin_headers: dict[str, str], redis_client: Redis
) -> None:
    """Variant names with ':' are read back whole."""
    event = _minute_ago(20)
    at = event - 3 * MINUTE
    body = _body(at, at + 1000, {"f": {"yes": 2, "no": 0, "variants": {"a:b": 2}}})
    app_client.post(URL, json=body, headers=admin_headers)
    before, _ = _window(redis_client, "f", event, apps=None)
    assert before[Variation("variant", "a:b")] == 2


@pytest.mark.parametrize("start", ["9999-12-31T23:58:00.000Z", "1969-12-31T23:59:00.000Z"])
def test_a_bucket_outside_the_clock_window_is_refused(
    app_client: TestClient, admin_headers: dict[str, str], redis_client: Redis, start: str
) -> None:
    """A bucket dated past tomorrow (or before 1970) would escape retention: 400, nothing kept."""
    bucket = {"start": start, "stop": start, "toggles": {"f": {"yes": 1, "no": 0}}}
    body = {"appName": "web", "environment": "production", "bucket": bucket}
    response = app_client.post(URL, json=body, headers=admin_headers)
    assert response.status_code == 400
    assert response.json()["errors"][0]["attribute"].startswith("bucket")
    assert _evaluation_keys(redis_client) == []
