"""GET /api/v2/deliveries: every subscription's dead letters (newest first) or due
deliveries (soonest first), a bounded page at a time, masked for the caller's role."""

from __future__ import annotations

import time
from typing import Any

import pytest
from fastapi.testclient import TestClient

from relay.store import deliveries, keys, tokens
from relay.store.client import Redis
from relay.store.deliveries import Attempt, DeliveryKind, DeliveryState, Finish, NewDelivery
from relay.store.tokens import Role
from tests.support import subscribe

LIST = "/api/v2/deliveries"
SECRET_HEADER = "Bearer sk-live-7f3a9c1d2e"


def headers_of(client: Redis, role: Role) -> dict[str, str]:
    _, secret = tokens.create_token(client, name=role.value, role=role)
    return {"Authorization": secret}


def create(client: Redis, sub_id: str, event_id: int, *, at: int, due_in: int = 60_000) -> str:
    delivery_id = deliveries.event_delivery_id(event_id=event_id, sub_id=sub_id)
    deliveries.create_deliveries(
        client,
        deliveries=[NewDelivery(delivery_id, DeliveryKind.EVENT, sub_id, event_id)],
        now_ms=at,
        due_at_ms=at + due_in,
    )
    return delivery_id


def kill(client: Redis, delivery_ids: list[str], *, at: int, body: str = "no") -> None:
    """Claim and finish the deliveries as dead after one 500 whose answer was `body`."""
    deliveries.claim(client, ids=delivery_ids, now_ms=at, lease_ms=60_000)
    attempt = Attempt(
        at=at, status_code=500, duration_ms=3, error=None, response_body=body, outcome="retry"
    )
    results = [
        Finish(d, DeliveryState.DEAD, attempt, reason=f"gave up: {body}") for d in delivery_ids
    ]
    deliveries.finish(client, results=results, now_ms=at, ttl_s=3600)


def page(api: TestClient, headers: dict[str, str], **params: Any) -> dict[str, Any]:
    response = api.get(LIST, params=params, headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_dead_letters_of_every_subscription_newest_first(
    app_client: TestClient, redis_client: Redis
) -> None:
    """Each with its subscription's id, key and name and its last attempt; the count of
    the whole queue."""
    # given
    a, b = subscribe(redis_client, name="a"), subscribe(redis_client, name="b")
    now = int(time.time() * 1000)
    old = create(redis_client, a, 1, at=now - 10)
    new = create(redis_client, b, 2, at=now - 10)
    pending = create(redis_client, a, 3, at=now - 10)
    kill(redis_client, [old], at=now - 5)
    kill(redis_client, [new], at=now)
    # when
    body = page(app_client, headers_of(redis_client, Role.READER), state="dead")
    # then
    assert [d["_id"] for d in body["items"]] == [new, old]
    assert pending not in str(body)
    assert body["totalCount"] == 2 and "next" not in body
    first = body["items"][0]
    assert (first["subscriptionId"], first["integrationKey"], first["subscriptionName"]) == (
        b,
        "webhook",
        "b",
    )
    assert (first["eventId"], first["state"], first["attemptCount"]) == (2, "dead", 1)
    assert first["queuedAt"] == now
    assert first["lastAttempt"] == {
        "at": now,
        "statusCode": 500,
        "durationMs": 3,
        "outcome": "retry",
    }


def test_receiver_text_is_masked_for_writers_and_left_out_for_readers(
    app_client: TestClient, redis_client: Redis
) -> None:
    """A receiver that echoed the subscription's credential: writers see its answer with the
    credential masked, readers see no answer at all; the reason is masked for both."""
    # given
    sub_id = subscribe(redis_client, headers={"Authorization": SECRET_HEADER})
    now = int(time.time() * 1000)
    kill(redis_client, [create(redis_client, sub_id, 1, at=now)], at=now, body=SECRET_HEADER)
    # when
    writer = page(app_client, headers_of(redis_client, Role.WRITER))
    reader = page(app_client, headers_of(redis_client, Role.READER))
    # then
    [seen] = writer["items"]
    assert (
        seen["lastAttempt"]["responseBody"] and "sk-live" not in seen["lastAttempt"]["responseBody"]
    )
    assert seen["reason"].startswith("gave up: ") and "sk-live" not in seen["reason"]
    [read] = reader["items"]
    assert "responseBody" not in read["lastAttempt"] and "error" not in read["lastAttempt"]
    assert "sk-live" not in str(reader) and "sk-live" not in str(writer)


def test_a_deleted_subscriptions_dead_letters_keep_no_text(
    app_client: TestClient, redis_client: Redis, admin_headers: dict[str, str]
) -> None:
    """Its credentials are gone, so nothing can be masked: no key, no reason, no answer."""
    sub_id = subscribe(redis_client, headers={"Authorization": SECRET_HEADER})
    now = int(time.time() * 1000)
    kill(redis_client, [create(redis_client, sub_id, 1, at=now)], at=now, body=SECRET_HEADER)
    redis_client.delete(keys.subscription(sub_id))  # as if deleted, its deliveries kept
    [item] = page(app_client, admin_headers)["items"]
    assert item["subscriptionId"] == sub_id
    assert not {"integrationKey", "subscriptionName", "reason"} & set(item)
    assert "sk-live" not in str(item)


def test_pending_lists_the_due_queue_soonest_first(
    app_client: TestClient, redis_client: Redis, admin_headers: dict[str, str]
) -> None:
    """state=pending: deliveries still to deliver, by when their attempt is due."""
    sub_id = subscribe(redis_client)
    now = int(time.time() * 1000)
    later = create(redis_client, sub_id, 1, at=now, due_in=90_000)
    sooner = create(redis_client, sub_id, 2, at=now, due_in=30_000)
    kill(redis_client, [create(redis_client, sub_id, 3, at=now)], at=now)
    body = page(app_client, admin_headers, state="pending")
    assert [d["_id"] for d in body["items"]] == [sooner, later]
    assert [d["queuedAt"] for d in body["items"]] == [now + 30_000, now + 90_000]
    assert {d["state"] for d in body["items"]} == {"pending"}
    assert body["totalCount"] == 2


@pytest.mark.parametrize(("state", "per_page"), [("dead", 3), ("pending", 4), ("dead", 1)])
def test_pages_follow_next_without_gaps_or_repeats(
    app_client: TestClient,
    redis_client: Redis,
    admin_headers: dict[str, str],
    state: str,
    per_page: int,
) -> None:
    """Deliveries of the same millisecond (a batch dies at once) split across pages: every
    one listed once, in the queue's order."""
    # given: 10 deliveries, 7 of them dying (or due) in the same millisecond
    sub_id = subscribe(redis_client)
    now = int(time.time() * 1000)
    made = [create(redis_client, sub_id, n, at=now, due_in=0 if n < 7 else n) for n in range(10)]
    if state == "dead":
        kill(redis_client, made[:7], at=now)
        kill(redis_client, made[7:], at=now - 1)
    # when
    listed: list[str] = []
    after = None
    for _ in range(20):
        params: dict[str, Any] = {"state": state, "limit": per_page}
        if after:
            params["after"] = after
        body = page(app_client, admin_headers, **params)
        listed += [d["_id"] for d in body["items"]]
        after = body.get("next")
        if not after:
            break
    # then
    assert sorted(listed) == sorted(made) and len(listed) == 10
    scores = redis_client.zrange(keys.DEAD if state == "dead" else keys.DUE, 0, -1, withscores=True)
    expected = sorted(scores, key=lambda s: (s[1], s[0]), reverse=state == "dead")
    assert listed == [member for member, _ in expected]


def test_expired_records_are_skipped(
    app_client: TestClient, redis_client: Redis, admin_headers: dict[str, str]
) -> None:
    """A dead letter whose record expired before the trim is left out, not an error."""
    sub_id = subscribe(redis_client)
    now = int(time.time() * 1000)
    gone, kept = create(redis_client, sub_id, 1, at=now), create(redis_client, sub_id, 2, at=now)
    kill(redis_client, [gone, kept], at=now)
    redis_client.delete(keys.delivery(gone))
    assert [d["_id"] for d in page(app_client, admin_headers)["items"]] == [kept]


@pytest.mark.parametrize(
    ("query", "attribute"),
    [
        ("limit=0", "limit"),
        ("limit=201", "limit"),
        ("limit=-1", "limit"),
        ("limit=x", "limit"),
        ("limit=99999999999999999999999", "limit"),
        ("state=delivered", "state"),
        ("state=", "state"),
        ("after=nope", "after"),
        ("after=12:", "after"),
        ("after=-5:msg_1", "after"),
        ("after=99999999999999999:msg_1", "after"),
        ("after=" + "1:" + "x" * 400, "after"),
        ("after=%C2%B2:msg_1", "after"),
    ],
)
def test_bad_parameters_are_400_naming_them(
    app_client: TestClient, admin_headers: dict[str, str], query: str, attribute: str
) -> None:
    """limit 1..200, state dead or pending, after a cursor this list gave: else 400."""
    response = app_client.get(f"{LIST}?{query}", headers=admin_headers)
    assert response.status_code == 400, response.text
    assert [e["attribute"] for e in response.json()["errors"]] == [attribute]


def test_the_largest_page_is_200(
    app_client: TestClient, redis_client: Redis, admin_headers: dict[str, str]
) -> None:
    """limit=200 is allowed; 250 dead letters make a page of 200 and a next one of 50."""
    sub_id = subscribe(redis_client)
    now = int(time.time() * 1000)
    kill(redis_client, [create(redis_client, sub_id, n, at=now) for n in range(250)], at=now)
    first = page(app_client, admin_headers, limit=200)
    second = page(app_client, admin_headers, limit=200, after=first["next"])
    assert (len(first["items"]), len(second["items"]), first["totalCount"]) == (200, 50, 250)


def test_listing_needs_a_reader(app_client: TestClient, redis_client: Redis) -> None:
    """No token: 401; an ingest token: 403."""
    assert app_client.get(LIST).status_code == 401
    ingest = app_client.get(LIST, headers=headers_of(redis_client, Role.INGEST))
    assert ingest.status_code == 403


def test_the_route_is_documented(app_client: TestClient) -> None:
    """In /openapi.json with its parameters, its page model and its errors."""
    operation = app_client.get("/openapi.json").json()["paths"][LIST]["get"]
    assert {p["name"] for p in operation["parameters"]} == {"state", "limit", "after"}
    assert {"200", "400", "401", "403"} <= set(operation["responses"])
