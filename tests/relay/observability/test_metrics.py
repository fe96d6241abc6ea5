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
from relay.store import deliveries, events, heartbeats, subscription_status, tokens
from relay.store.client import Redis, connect
from relay.store.deliveries import DeliveryKind, DeliveryState, Finish, NewDelivery
from relay.store.tokens import Role
from tests.support import subscribe


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


LIMITS = deliveries.Limits(
    max_in_flight=10,
    lease_ms=60_000,
    circuit_failures=3,
    circuit_cooldown_ms=30_000,
    circuit_cooldown_max_ms=60_000,
)


def queued(client: Redis, sub_id: str, *order_keys: str, claimed_at: int | None = None) -> None:
    """A delivery per ordering key given ('' unordered), in event order; claimed at
    `claimed_at` when given (taking tokens of a rate-limited subscription's bucket)."""
    made = [
        NewDelivery(f"msg_{n}_{sub_id}", DeliveryKind.EVENT, sub_id, n, order_key=key)
        for n, key in enumerate(order_keys)
    ]
    ids = deliveries.create_deliveries(client, deliveries=made, now_ms=1000, due_at_ms=1000)
    if claimed_at is not None:
        deliveries.claim(client, ids=ids, now_ms=claimed_at, lease_ms=60_000, limits=LIMITS)


def per_subscription(
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str
) -> dict[str, float]:
    """The samples of a per-subscription gauge: subscription id -> value."""
    return {dict(labels)["subscription"]: v for (n, labels), v in samples.items() if n == name}


def test_paused_throttled_and_held_back_subscriptions_are_gauged_by_id(
    app_client: TestClient, redis_client: Redis, admin_headers: dict[str, str]
) -> None:
    """Each gauge names the subscriptions it is true of: paused while the pause lasts,
    throttled when its last claim (within 2 s) emptied its bucket, held back by how many
    deliveries wait behind ordering heads; a calm subscription is in none."""
    # given
    now = int(time.time() * 1000)
    paused, ended, ordered, calm = (subscribe(redis_client) for _ in range(4))
    throttled, stale = (subscribe(redis_client, delivery={"maxPerSecond": 1}) for _ in range(2))
    for sub_id, until in ((paused, now + 60_000), (ended, now - 1)):
        subscription_status.pause(
            redis_client, sub_id=sub_id, until_ms=until, reason="429", at_ms=0
        )
    for sub_id, at in ((throttled, now), (stale, now - 3_000)):
        queued(redis_client, sub_id, "", "", claimed_at=at)  # the second finds no token
    queued(redis_client, ordered, "flag:p/a", "flag:p/a", "flag:p/a", "flag:p/b", "flag:p/b")
    queued(redis_client, calm, "", "", claimed_at=now)
    # when
    samples = scrape(app_client, admin_headers)
    # then
    assert per_subscription(samples, "relay_subscription_paused") == {paused: 1}
    assert per_subscription(samples, "relay_subscription_throttled") == {throttled: 1}
    assert per_subscription(samples, "relay_held_back_deliveries") == {ordered: 3}


def test_held_back_deliveries_are_counted_over_200_ordering_keys_at_most(
    app_client: TestClient, redis_client: Redis, admin_headers: dict[str, str]
) -> None:
    """250 keys each holding one delivery back: a scrape reads 200 of them (bounded work)."""
    # given
    ordered = subscribe(redis_client)
    queued(redis_client, ordered, *(f"flag:p/f{n // 2}" for n in range(500)))
    # when
    samples = scrape(app_client, admin_headers)
    # then
    assert per_subscription(samples, "relay_held_back_deliveries") == {ordered: 200}


def test_the_workers_counters_are_in_a_single_process_scrape(
    app_client: TestClient, admin_headers: dict[str, str]
) -> None:
    """Pauses and operational events are counted in this process's registry, so a scrape
    without PROMETHEUS_MULTIPROC_DIR shows them too."""
    # given
    pauses, dead = "relay_subscription_pauses_total", "relay_operational_events_total"
    before = scrape(app_client, admin_headers)
    # when
    metrics.PAUSES.inc()
    metrics.OPERATIONAL_EVENTS.labels(type="delivery-dead").inc()
    after = scrape(app_client, admin_headers)
    # then
    assert value(after, pauses) - value(before, pauses) == 1
    assert value(after, dead, type="delivery-dead") - value(before, dead, type="delivery-dead") == 1


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
