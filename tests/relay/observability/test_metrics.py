"""`GET /metrics` in one process: access, the ingest counter, route templates, Redis gauges."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from relay.api.app import create_app
from relay.cli.embedded_redis import free_port
from relay.cli.up import child_environment, fresh_metrics_dir
from relay.observability import metrics
from relay.settings import Settings
from relay.store import deliveries, events, heartbeats, tokens
from relay.store.client import Redis, connect
from relay.store.deliveries import DeliveryKind, DeliveryState, Finish, NewDelivery
from relay.store.tokens import Role


def scrape(
    client: TestClient, headers: dict[str, str]
) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of a scrape: (name, labels) -> value."""
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def event(kind: str, n: int) -> dict[str, object]:
    return {
        "id": n,
        "type": kind,
        "createdBy": "metrics@example.com",
        "featureName": f"f{n}",
        "project": "p",
    }


def test_metrics_need_a_token_that_may_read(app_client: TestClient, redis_client: Redis) -> None:
    """No token is 401, an ingest token 403; a reader token as a Bearer token gets the text."""
    # given
    _, ingest = tokens.create_token(redis_client, name="ingest", role=Role.INGEST)
    _, reader = tokens.create_token(redis_client, name="prometheus", role=Role.READER)
    # when
    anonymous = app_client.get("/metrics")
    ingesting = app_client.get("/metrics", headers={"Authorization": ingest})
    reading = app_client.get("/metrics", headers={"Authorization": f"Bearer {reader}"})
    # then
    assert anonymous.status_code == 401
    assert ingesting.status_code == 403
    assert reading.status_code == 200
    assert reading.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert "# TYPE relay_events_ingested_total counter" in reading.text


def test_ingested_events_are_counted_by_source_and_type_once_each(
    app_client: TestClient, admin_headers: dict[str, str]
) -> None:
    """Recorded events count per type; an unknown type counts as "other"; a re-send counts not."""
    # given
    before = scrape(app_client, admin_headers)
    batch = [event("feature-created", 1), event("feature-created", 2), event("no-such-type", 3)]
    # when
    for _ in range(2):  # the second post re-sends the same producer ids
        response = app_client.post("/api/events?source=metrics", json=batch, headers=admin_headers)
        assert response.status_code == 202
    after = scrape(app_client, admin_headers)
    # then
    name = "relay_events_ingested_total"
    created = {"source": "metrics", "type": "feature-created"}
    other = {"source": "metrics", "type": "other"}
    assert value(after, name, **created) - value(before, name, **created) == 2
    assert value(after, name, **other) - value(before, name, **other) == 1
    assert not any(dict(labels).get("type") == "no-such-type" for _, labels in after)


def test_request_durations_are_labelled_by_route_template(
    app_client: TestClient, admin_headers: dict[str, str]
) -> None:
    """A feature's events are timed under `/api/admin/events/{featureName}`, never its name."""
    # when
    app_client.get("/api/admin/events/secret-flag-name", headers=admin_headers)
    app_client.get("/no/such/page", headers=admin_headers)
    samples = scrape(app_client, admin_headers)
    # then
    count = "relay_http_request_duration_seconds_count"
    routed = {"method": "GET", "route": "/api/admin/events/{featureName}", "status": "200"}
    assert value(samples, count, **routed) >= 1
    assert value(samples, count, method="GET", route="unmatched", status="404") >= 1
    assert not any("secret-flag-name" in str(labels) for _, labels in samples)


def test_a_body_over_the_limit_is_timed_under_its_route(
    settings: Settings, redis_client: Redis, admin_headers: dict[str, str]
) -> None:
    """A 413 answered before routing still carries the route it was sent to."""
    # given
    small = settings.model_copy(update={"max_body_bytes": 100})
    with TestClient(create_app(small, redis=redis_client)) as client:
        # when
        response = client.post("/api/events", content=b"x" * 500, headers=admin_headers)
        samples = scrape(client, admin_headers)
    # then
    assert response.status_code == 413
    count = "relay_http_request_duration_seconds_count"
    assert value(samples, count, method="POST", route="/api/events", status="413") >= 1


def test_queue_gauges_are_read_from_redis(
    app_client: TestClient, redis_client: Redis, admin_headers: dict[str, str]
) -> None:
    """Outbox, due, ready, claims and dead gauges are the Redis sets' sizes at scrape time."""
    # given
    events.record(redis_client, events=[event("feature-created", n) for n in range(3)], source="s")
    wanted = [NewDelivery(f"msg_{n}_sub", DeliveryKind.EVENT, "sub", n) for n in range(4)]
    deliveries.create_deliveries(redis_client, deliveries=wanted, now_ms=1000, due_at_ms=1000)
    now = int(time.time() * 1000)
    claimed = deliveries.claim(redis_client, ids=["msg_0_sub"], now_ms=now, lease_ms=3_600_000)
    finish = [Finish("msg_1_sub", DeliveryState.DEAD, reason="test")]
    deliveries.finish(redis_client, results=finish, now_ms=3000, ttl_s=60)
    heartbeats.beat(redis_client, worker="w1@test")
    # when
    samples = scrape(app_client, admin_headers)
    # then
    assert len(claimed) == 1
    assert value(samples, "relay_redis_up") == 1
    assert value(samples, "relay_outbox_depth") == 3
    assert value(samples, "relay_due_depth") == 3  # 4 made, 1 dead
    assert value(samples, "relay_due_ready") == 2  # the claimed one is due when its lease ends
    assert value(samples, "relay_claims") == 1
    assert value(samples, "relay_dead_deliveries") == 1
    assert value(samples, "relay_workers") == 1


@pytest.fixture
def api_without_redis(settings: Settings) -> Iterator[TestClient]:
    """The API on a Redis URL where nothing listens."""
    client = connect(f"redis://127.0.0.1:{free_port()}/0")
    with TestClient(create_app(settings, redis=client)) as test_client:
        yield test_client


def test_a_scrape_without_redis_still_answers(
    api_without_redis: TestClient, admin_headers: dict[str, str]
) -> None:
    """Redis down: the process metrics still come, with relay_redis_up 0 and no queue gauges."""
    samples = scrape(api_without_redis, admin_headers)
    assert value(samples, "relay_redis_up") == 0
    assert ("relay_due_depth", frozenset()) not in samples


@pytest.mark.parametrize(
    ("given", "label"),
    [
        ("feature-created", "feature-created"),
        ("feature-environment-enabled", "feature-environment-enabled"),
        ("made-up-type", "other"),
        (None, "other"),
        (42, "other"),
    ],
)
def test_event_type_labels_are_unleash_types_or_other(given: object, label: str) -> None:
    """Only the types Unleash defines become label values: the label set stays bounded."""
    assert metrics.event_type_label(given) == label


def test_labels_past_the_cap_share_the_other_label() -> None:
    """Once `limit` distinct values were seen, new ones are labelled "other"; old ones stay."""
    label = metrics.BoundedLabel(3)
    assert [label(name) for name in ("a", "b", "c", "d", "e")] == ["a", "b", "c", "other", "other"]
    assert label("b") == "b"


def test_relay_up_gives_its_children_one_emptied_metrics_directory(tmp_path: Path) -> None:
    """API, worker and beat share `<data dir>/metrics`, emptied at start (old files would add)."""
    # given
    (tmp_path / "metrics").mkdir()
    (tmp_path / "metrics" / "counter_123.db").write_bytes(b"old run")
    # when
    path = fresh_metrics_dir(tmp_path)
    env = child_environment("redis://127.0.0.1:1/0", "secret", tmp_path)
    # then
    assert env["PROMETHEUS_MULTIPROC_DIR"] == str(tmp_path / "metrics") == str(path)
    assert list(path.iterdir()) == []
