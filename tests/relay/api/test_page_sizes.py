"""Every list a reader or writer can ask for is a bounded page."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from relay.store import subscriptions, tokens
from relay.store.client import Redis
from relay.store.events import PAGE_MAX_BYTES
from relay.store.tokens import Role
from tests.support import subscribe

SUBS = "/api/v2/integrations/webhook"


def _reader(redis_client: Redis) -> dict[str, str]:
    _, secret = tokens.create_token(redis_client, name="reader", role=Role.READER)
    return {"Authorization": secret}


def _events(
    count: int, start: int, *, project: str = "p", feature: str = "f"
) -> list[dict[str, Any]]:
    return [
        {
            "id": start + n,
            "type": "feature-updated",
            "createdBy": "alice@example.com",
            "createdAt": "2026-01-01T00:00:00.000Z",
            "featureName": feature,
            "project": project,
            "data": {"name": feature},
        }
        for n in range(count)
    ]


def test_events_without_limit_are_one_bounded_page(
    app_client: TestClient, admin_headers: dict[str, str], redis_client: Redis
) -> None:
    """A project's or a toggle's events without `limit` come back 1000 at most, with the total."""
    # given: 1,100 events of one project and toggle
    for batch in (_events(1000, 1), _events(100, 1001)):
        posted = app_client.post("/api/events", json=batch, headers=admin_headers)
        assert posted.status_code == 202, posted.text
    reader = _reader(redis_client)
    # when
    by_project = app_client.get("/api/admin/events?project=p", headers=reader)
    by_toggle = app_client.get("/api/admin/events/f", headers=reader)
    second_page = app_client.get("/api/admin/events/f?offset=1000", headers=reader)
    # then
    for response in (by_project, by_toggle):
        assert response.status_code == 200, response.text
        body = response.json()
        assert len(body["events"]) == 1000 and body["totalEvents"] == 1100
    assert len(second_page.json()["events"]) == 100


def test_subscription_list_is_paged(app_client: TestClient, redis_client: Redis) -> None:
    """The list answers 100 at most by default, with totalCount and a next link to the rest."""
    # given
    ids = [subscribe(redis_client) for _ in range(102)]
    reader = _reader(redis_client)
    # when
    first = app_client.get(SUBS, headers=reader)
    # then
    assert first.status_code == 200, first.text
    body = first.json()
    assert [i["_id"] for i in body["items"]] == ids[:100]
    assert body["totalCount"] == 102
    assert body["_links"]["next"]["href"] == f"{SUBS}?limit=100&offset=100"
    rest = app_client.get(body["_links"]["next"]["href"], headers=reader).json()
    assert [i["_id"] for i in rest["items"]] == ids[100:]
    assert "next" not in rest["_links"]
    assert rest["_links"]["prev"]["href"] == f"{SUBS}?limit=100&offset=0"


def test_subscription_page_size_is_capped(
    app_client: TestClient, admin_headers: dict[str, str]
) -> None:
    """A `limit` past 100 or below 1 is a 400 naming limit."""
    for query in ("limit=101", "limit=0", "offset=-1"):
        response = app_client.get(f"{SUBS}?{query}", headers=admin_headers)
        assert response.status_code == 400, response.text
        assert [e["attribute"] for e in response.json()["errors"]] == [query.split("=")[0]]


def test_small_subscription_pages(
    app_client: TestClient, admin_headers: dict[str, str], redis_client: Redis
) -> None:
    """`limit` and `offset` page through the subscriptions, oldest first."""
    ids = [subscribe(redis_client) for _ in range(3)]
    page = app_client.get(f"{SUBS}?limit=2&offset=1", headers=admin_headers).json()
    assert [i["_id"] for i in page["items"]] == ids[1:]
    assert page["totalCount"] == 3 and "next" not in page["_links"]
    assert subscriptions.list_subscriptions(redis_client)[0].id == ids[0]


def test_deliveries_page_is_capped(
    app_client: TestClient, admin_headers: dict[str, str], redis_client: Redis
) -> None:
    """Deliveries come 100 at most per page (each carries up to 50 attempts)."""
    sub_id = subscribe(redis_client)
    response = app_client.get(f"{SUBS}/{sub_id}/deliveries?limit=101", headers=admin_headers)
    assert response.status_code == 400
    assert [e["attribute"] for e in response.json()["errors"]] == ["limit"]


def test_a_page_of_large_events_stops_at_its_byte_budget(
    app_client: TestClient, admin_headers: dict[str, str], redis_client: Redis
) -> None:
    """Events near the body limit: a page holds at most PAGE_MAX_BYTES of them (at least one),
    newest first, and `offset` reaches the rest (10 events of 1 MiB were 10 MB in one answer)."""
    # given: 10 events of about 1 MiB each
    big = "x" * (1024 * 1024)
    for n, event in enumerate(_events(10, 1)):
        event["data"] = {"blob": big}
        posted = app_client.post("/api/events", json=event, headers=admin_headers)
        assert posted.status_code == 202, n
    reader = _reader(redis_client)
    # when
    first = app_client.get("/api/admin/events", params={"limit": 10}, headers=reader)
    # then
    assert first.status_code == 200
    assert len(first.content) <= PAGE_MAX_BYTES + 1024 * 1024
    page = first.json()
    assert 1 <= len(page["events"]) < 10 and page["totalEvents"] == 10
    rest = app_client.get(
        "/api/admin/events",
        params={"limit": 10, "offset": len(page["events"])},
        headers=reader,
    ).json()
    assert rest["events"][0]["id"] == page["events"][-1]["id"] - 1
