"""GET /api/v2/status: what `relay status --json` shows, masked for the caller's role."""

from __future__ import annotations

import time

from fastapi.testclient import TestClient

from relay.observability.status import as_json, gather
from relay.store import deliveries, heartbeats, subscription_status, subscriptions, tokens
from relay.store.client import Redis
from relay.store.deliveries import DeliveryKind, DeliveryState, Finish, NewDelivery
from relay.store.tokens import Role
from tests.support import record_event, subscription

SECRET_HEADER = "Bearer sk-live-7f3a9c1d2e"
STATUS = "/api/v2/status"


def headers_of(client: Redis, role: Role) -> dict[str, str]:
    _, secret = tokens.create_token(client, name=role.value, role=role)
    return {"Authorization": secret}


def broken_subscription(client: Redis) -> str:
    """A subscription whose receiver echoed its credential, with 2 dead letters, turned
    off with a reason that quotes the credential too."""
    record = subscription(
        client,
        url="https://hooks.example.com/services/T0/B0/xyz?code=s3cr3t",
        name="broken",
        headers={"Authorization": SECRET_HEADER},
    )
    now = int(time.time() * 1000)
    subscription_status.record_failure(
        client,
        sub_id=record.id,
        at_ms=now,
        status_code=401,
        response_body=f"bad credential {SECRET_HEADER}",
    )
    made = [NewDelivery(f"msg_{n}_{record.id}", DeliveryKind.EVENT, record.id, n) for n in (1, 2)]
    deliveries.create_deliveries(client, deliveries=made, now_ms=now, due_at_ms=now)
    dead = [Finish(d.id, DeliveryState.DEAD, reason="gave up") for d in made]
    deliveries.finish(client, results=dead, now_ms=now, ttl_s=3600)
    subscriptions.turn_off(client, sub_id=record.id, reason=f"refused {SECRET_HEADER}")
    return record.id


def test_status_is_what_relay_status_json_shows_with_the_integration_key(
    app_client: TestClient, redis_client: Redis
) -> None:
    """The same document as the CLI's `--json` (every key, the same counts), each
    subscription with its integration key; for a writer only credentials are masked."""
    # given
    sub_id = broken_subscription(redis_client)
    record_event(redis_client)
    heartbeats.beat(redis_client, worker="w1@host")
    cli = as_json(gather(redis_client, worker_ttl=30))
    # when
    response = app_client.get(STATUS, headers=headers_of(redis_client, Role.WRITER))
    # then
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == set(cli)
    assert body["queues"] == cli["queues"] and body["queues"]["dead"] == 2
    assert body["redis"] == cli["redis"]
    assert [w["name"] for w in body["workers"]] == ["w1@host"]
    [shown], [raw] = body["subscriptions"], cli["subscriptions"]
    assert set(shown) == set(raw) | {"integrationKey"}
    assert shown["integrationKey"] == "webhook" and shown["id"] == sub_id
    for name in ("on", "successCount", "errorCount", "dead", "failingSince", "lastError"):
        assert shown[name] == raw[name], name
    assert shown["url"] == "https://hooks.example.com/services/T0/B0/xyz?code=********"
    assert shown["lastErrorText"].startswith("401: bad credential")
    assert "sk-live" not in response.text and "s3cr3t" not in response.text


def test_a_reader_sees_the_origin_and_no_receiver_text(
    app_client: TestClient, redis_client: Redis
) -> None:
    """Readers get the URL's origin only, no last error text, and the relay's reason masked
    (as the subscription's own answer shows it)."""
    broken_subscription(redis_client)
    response = app_client.get(STATUS, headers=headers_of(redis_client, Role.READER))
    assert response.status_code == 200, response.text
    [shown] = response.json()["subscriptions"]
    assert shown["url"] == "https://hooks.example.com/********"
    assert shown["lastErrorText"] is None
    assert shown["disabledReason"].startswith("refused ")
    assert "sk-live" not in response.text and "s3cr3t" not in response.text
    assert "bad credential" not in response.text


def test_status_needs_a_reader(app_client: TestClient, redis_client: Redis) -> None:
    """No token: 401; an ingest token: 403."""
    assert app_client.get(STATUS).status_code == 401
    ingest = app_client.get(STATUS, headers=headers_of(redis_client, Role.INGEST))
    assert ingest.status_code == 403 and ingest.json()["code"] == "forbidden"


def test_status_of_an_empty_relay(app_client: TestClient, admin_headers: dict[str, str]) -> None:
    """Nothing recorded, no worker: zeros and empty lists, not an error."""
    body = app_client.get(STATUS, headers=admin_headers).json()
    assert body["subscriptions"] == [] and body["workers"] == []
    assert set(body["queues"].values()) == {0}


def test_status_is_documented(app_client: TestClient) -> None:
    """In /openapi.json with its answer's model and the auth errors."""
    operation = app_client.get("/openapi.json").json()["paths"][STATUS]["get"]
    answer = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert answer["$ref"].endswith("/StatusRep")
    assert {"401", "403", "429", "503"} <= set(operation["responses"])
