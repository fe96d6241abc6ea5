"""Operator endpoints for deliveries, through the API on a real Redis (no worker needed)."""

from __future__ import annotations

import time
from typing import Any

import pytest
from fastapi.testclient import TestClient

from relay.store import deliveries, events, keys, tokens
from relay.store.client import Redis
from relay.store.deliveries import Attempt, DeliveryKind, DeliveryState, Finish, NewDelivery
from relay.store.tokens import Role
from tests.support import subscribe

SUBS = "/api/v2/integrations/webhook"


def delivery_to(client: Redis, sub_id: str, event_id: int, *, at: int) -> str:
    delivery_id = deliveries.event_delivery_id(event_id=event_id, sub_id=sub_id)
    deliveries.create_deliveries(
        client,
        deliveries=[NewDelivery(delivery_id, DeliveryKind.EVENT, sub_id, event_id)],
        now_ms=at,
        due_at_ms=at + 60_000,
    )
    return delivery_id


def kill(client: Redis, delivery_id: str, *, at: int) -> None:
    """Claim and finish the delivery as dead after one 500."""
    deliveries.claim(client, ids=[delivery_id], now_ms=at, lease_ms=60_000)
    attempt = Attempt(
        at=at, status_code=500, duration_ms=3, error=None, response_body="no", outcome="retry"
    )
    deliveries.finish(
        client,
        results=[
            Finish(delivery_id, DeliveryState.DEAD, attempt, reason="gave up after 1 attempts")
        ],
        now_ms=at,
        ttl_s=3600,
    )


def test_list_shows_recent_deliveries_with_their_attempts(
    app_client: TestClient, redis_client: Redis, admin_headers: dict[str, str]
) -> None:
    """Newest first, each with its attempts; `state` filters and `limit` bounds."""
    # given
    sub_id = subscribe(redis_client)
    now = int(time.time() * 1000)
    first = delivery_to(redis_client, sub_id, 1, at=now - 2)
    second = delivery_to(redis_client, sub_id, 2, at=now - 1)
    kill(redis_client, first, at=now)
    # when
    everything = app_client.get(f"{SUBS}/{sub_id}/deliveries", headers=admin_headers)
    dead = app_client.get(f"{SUBS}/{sub_id}/deliveries?state=dead", headers=admin_headers)
    one = app_client.get(f"{SUBS}/{sub_id}/deliveries?limit=1", headers=admin_headers)
    # then
    assert everything.status_code == 200, everything.text
    assert [d["_id"] for d in everything.json()["items"]] == [second, first]
    [item] = dead.json()["items"]
    assert item["_id"] == first and item["state"] == "dead" and item["eventId"] == 1
    assert item["reason"] == "gave up after 1 attempts" and item["attemptCount"] == 1
    assert item["attempts"] == [
        {"at": now, "statusCode": 500, "durationMs": 3, "responseBody": "no", "outcome": "retry"}
    ]
    assert [d["_id"] for d in one.json()["items"]] == [second]


@pytest.mark.parametrize(
    "query", ["state=lost", "limit=0", "limit=201", "limit=many"], ids=["state", "0", "201", "nan"]
)
def test_bad_list_parameters_are_400(
    app_client: TestClient, redis_client: Redis, admin_headers: dict[str, str], query: str
) -> None:
    """An unknown state or a limit out of 1..200 is a 400 in the error shape."""
    sub_id = subscribe(redis_client)
    response = app_client.get(f"{SUBS}/{sub_id}/deliveries?{query}", headers=admin_headers)
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_request" and response.json()["errors"]


@pytest.mark.parametrize(
    "path",
    [
        "/api/v2/integrations/webhook/nope/deliveries",
        "/api/v2/integrations/slack/{sub}/deliveries",
        "/api/v2/integrations/webhook/{sub}/deliveries/msg_1_nope/retry",
    ],
    ids=["unknown subscription", "other integration", "unknown delivery"],
)
def test_unknown_subscriptions_and_deliveries_are_404(
    app_client: TestClient, redis_client: Redis, admin_headers: dict[str, str], path: str
) -> None:
    """Unknown subscription, integration or delivery: 404 not_found."""
    sub_id = subscribe(redis_client)
    url = path.format(sub=sub_id)
    response = (app_client.post if url.endswith("retry") else app_client.get)(
        url, headers=admin_headers
    )
    assert response.status_code == 404 and response.json()["code"] == "not_found"


def test_a_delivery_of_another_subscription_is_404(
    app_client: TestClient, redis_client: Redis, admin_headers: dict[str, str]
) -> None:
    """A delivery id is only found under its own subscription."""
    mine, other = subscribe(redis_client), subscribe(redis_client)
    theirs = delivery_to(redis_client, other, 1, at=int(time.time() * 1000))
    response = app_client.post(f"{SUBS}/{mine}/deliveries/{theirs}/retry", headers=admin_headers)
    assert response.status_code == 404


def test_retry_revives_a_dead_delivery(
    app_client: TestClient, redis_client: Redis, admin_headers: dict[str, str]
) -> None:
    """Retry: pending again, attempts reset, due now, out of the dead letters."""
    # given
    sub_id = subscribe(redis_client)
    now = int(time.time() * 1000)
    delivery_id = delivery_to(redis_client, sub_id, 1, at=now)
    kill(redis_client, delivery_id, at=now)
    # when
    response = app_client.post(
        f"{SUBS}/{sub_id}/deliveries/{delivery_id}/retry", headers=admin_headers
    )
    # then
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["state"] == "pending" and body["attemptCount"] == 0 and len(body["attempts"]) == 1
    assert body["nextAttemptAt"] >= now and "reason" not in body
    assert redis_client.zscore(keys.DEAD, delivery_id) is None
    assert redis_client.zscore(keys.DUE, delivery_id) is not None


def test_retry_refuses_delivered_deliveries_and_subscriptions_that_are_off(
    app_client: TestClient, redis_client: Redis, admin_headers: dict[str, str]
) -> None:
    """Nothing to retry once delivered (409), and an off subscription must be turned on (409)."""
    # given
    on_id, off_id = subscribe(redis_client), subscribe(redis_client, on=False)
    now = int(time.time() * 1000)
    delivered = delivery_to(redis_client, on_id, 1, at=now)
    deliveries.claim(redis_client, ids=[delivered], now_ms=now, lease_ms=1000)
    deliveries.finish(
        redis_client, results=[Finish(delivered, DeliveryState.DELIVERED)], now_ms=now, ttl_s=0
    )
    dead = delivery_to(redis_client, off_id, 1, at=now)
    kill(redis_client, dead, at=now)
    # when
    again = app_client.post(f"{SUBS}/{on_id}/deliveries/{delivered}/retry", headers=admin_headers)
    off = app_client.post(f"{SUBS}/{off_id}/deliveries/{dead}/retry", headers=admin_headers)
    # then
    assert (again.status_code, again.json()["code"]) == (409, "already_delivered")
    assert (off.status_code, off.json()["code"]) == (409, "subscription_off")
    assert redis_client.zscore(keys.DEAD, dead) is not None


def test_replay_creates_new_deliveries_for_the_range_the_policy_includes(
    app_client: TestClient, redis_client: Redis, admin_headers: dict[str, str]
) -> None:
    """Events recorded in [from, to] that the policy includes get new deliveries."""
    # given
    only_a = [{"effect": "allow", "resources": ["proj/*:env/*:flag/a*"], "actions": ["*"]}]
    sub_id = subscribe(redis_client, statements=only_a)
    batch = [
        {
            "type": "feature-created",
            "createdBy": "me",
            "featureName": name,
            "project": "p",
            "createdAt": at,
        }
        for name, at in [
            ("a1", "2030-01-01T00:00:00Z"),
            ("a2", "2030-01-01T00:01:00Z"),
            ("b1", "2030-01-01T00:01:30Z"),
            ("a3", "2030-01-01T00:03:00Z"),
        ]
    ]
    ids = events.record_events(redis_client, events=batch, source="test")
    body = {"from": 1893456060000, "to": "2030-01-01T00:02:00Z"}
    # when
    first = app_client.post(f"{SUBS}/{sub_id}/replay", json=body, headers=admin_headers)
    second = app_client.post(f"{SUBS}/{sub_id}/replay", json=body, headers=admin_headers)
    # then
    assert first.status_code == 202, first.text
    assert first.json()["count"] == 1
    [replayed] = first.json()["ids"]
    assert replayed.startswith(f"msg_{ids[1]}_{sub_id}_r")
    assert second.json()["ids"] != first.json()["ids"]
    delivery = deliveries.get_delivery(redis_client, delivery_id=replayed)
    assert delivery is not None and delivery.kind is DeliveryKind.REPLAY
    assert delivery.event_id == ids[1] and delivery.state is DeliveryState.PENDING


@pytest.mark.parametrize(
    "body",
    [
        {"from": 0},
        {"from": 10, "to": 5},
        {"from": "yesterday", "to": 5},
        {"from": 0, "to": 5, "extra": True},
        {"from": True, "to": 5},
        [],
    ],
    ids=["missing to", "reversed", "not a time", "unknown field", "boolean", "not an object"],
)
def test_bad_replay_bodies_are_400(
    app_client: TestClient, redis_client: Redis, admin_headers: dict[str, str], body: Any
) -> None:
    """A replay body that is not a {from, to} range of times is a 400, and nothing is created."""
    sub_id = subscribe(redis_client)
    response = app_client.post(f"{SUBS}/{sub_id}/replay", json=body, headers=admin_headers)
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "invalid_request"
    assert redis_client.zcard(keys.subscription_deliveries(sub_id)) == 0


def test_replay_to_an_off_subscription_is_409(
    app_client: TestClient, redis_client: Redis, admin_headers: dict[str, str]
) -> None:
    """A subscription that is off receives nothing, replays included."""
    sub_id = subscribe(redis_client, on=False)
    response = app_client.post(
        f"{SUBS}/{sub_id}/replay", json={"from": 0, "to": 1}, headers=admin_headers
    )
    assert response.status_code == 409 and response.json()["code"] == "subscription_off"


@pytest.mark.parametrize(
    ("method", "suffix"),
    [("GET", "deliveries"), ("POST", "replay"), ("POST", "test"), ("POST", "deliveries/x/retry")],
)
def test_readers_may_not_use_the_operator_endpoints(
    app_client: TestClient, redis_client: Redis, method: str, suffix: str
) -> None:
    """These endpoints need a writer token: a reader gets 403."""
    sub_id = subscribe(redis_client)
    _, secret = tokens.create_token(redis_client, name="r", role=Role.READER)
    response = app_client.request(
        method,
        f"{SUBS}/{sub_id}/{suffix}",
        json={"from": 0, "to": 1},
        headers={"Authorization": secret},
    )
    assert response.status_code == 403
