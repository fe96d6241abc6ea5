"""Unleash's event search over recorded events: filters, order, pages, labels and summaries.

The events are Unleash 8.2's own (tests/data/shared/fixtures), posted as its webhook
sends them; the expected answers were read off Unleash 8.2 for the same events.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from relay.api.app import create_app
from relay.settings import Settings
from relay.store.client import Redis

FIXTURE = (
    Path(__file__).resolve().parents[2]
    / "data/shared/fixtures/unleash/unleash-8.2.0-events-sample.jsonl"
)
PATH = "/api/admin/search/events"
UNLEASH = "http://localhost:4242"  # Unleash's default UNLEASH_URL: no source says otherwise


@pytest.fixture
def posted(app_client: TestClient, admin_headers: dict[str, str]) -> dict[int, int]:
    """The fixture's 27 events posted by Unleash's webhook: producer id -> relay id."""
    fixture = [json.loads(line) for line in FIXTURE.read_text().splitlines()]
    response = app_client.post("/api/events?source=unleash", json=fixture, headers=admin_headers)
    assert response.status_code == 202
    return {e["id"]: i for e, i in zip(fixture, response.json()["ids"], strict=True)}


def _search(client: TestClient, headers: dict[str, str], **params: str) -> dict[str, Any]:
    response = client.get(PATH, params=params, headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _producer_ids(body: dict[str, Any]) -> list[int]:
    return [event["producerId"] for event in body["events"]]


ALL_NEWEST_FIRST = [27, 26, 25, 24, 23, 22, 21, 20, 19, 18, 17, 16, 15, 14, 13, 12]
ALL_NEWEST_FIRST += [11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1]  # 11/10 and 3/2 share their time

FILTERS: list[tuple[dict[str, str], list[int]]] = [
    ({"type": "IS:feature-created"}, [27, 20, 18, 9]),
    ({"type": "IS_ANY_OF:feature-created, feature-archived"}, [27, 25, 20, 18, 9]),
    ({"type": "IS:feature-created,feature-archived"}, [27, 25, 20, 18, 9]),  # as Unleash
    ({"feature": "IS:demo.flag"}, [25, 24, 23, 21, 11, 10, 9]),
    ({"project": "IS:default"}, [27, 25, 24, 23, 21, 20, 18, 11, 10, 9]),
    ({"project": "IS:*"}, [5]),
    ({"environment": "IS:production"}, [21, 11, 10]),
    ({"createdBy": "IS:-1337"}, [5]),
    ({"groupId": "IS:01M82AC53BD4N7BYYHS608GKVZ"}, [11, 10]),
    ({"query": "team-a"}, [25, 24, 23, 22]),  # in data or in tags
    ({"query": "TEAM-A"}, [25, 24, 23, 22]),
    ({"query": "new desc"}, [24]),
    ({"query": "admin"}, [5]),  # in its data; createdBy is not searched
    ({"query": '"name": "demo.flag"'}, [24]),  # preData's jsonb text: spaced
    ({"query": '"name":"demo.flag"'}, [24, 9]),  # data's json text: compact
    ({"query": "flexible_ollout"}, [10, 4]),  # `_` is any one character
    ({"query": "Default on%Strategy"}, [1]),  # `%` is any text
    ({"query": "no such text"}, []),
    ({"from": "IS:2026-11-22", "to": "IS:2026-11-22"}, ALL_NEWEST_FIRST),
    ({"from": "IS:2026-11-23"}, []),
    ({"to": "IS:2026-11-21"}, []),
    ({"type": "IS:feature-created", "query": "demo"}, [9]),
    (
        {"feature": "IS:demo.flag", "environment": "IS:production", "createdBy": "IS:-42"},
        [21, 11, 10],
    ),
    (
        {"project": "IS:default", "type": "IS:feature-created", "to": "IS:2026-11-22"},
        [27, 20, 18, 9],
    ),
]


@pytest.mark.parametrize(("params", "expected"), FILTERS)
def test_each_filter_keeps_what_unleash_keeps_newest_first(
    app_client: TestClient,
    admin_headers: dict[str, str],
    posted: dict[int, int],
    params: dict[str, str],
    expected: list[int],
) -> None:
    """Every filter and a few combinations, over Unleash's own events."""
    body = _search(app_client, admin_headers, limit="1000", **params)
    assert _producer_ids(body) == expected
    assert body["total"] == len(expected)
    assert body["complete"] is True
    assert body["searchedBackTo"] is None


def test_by_default_the_newest_50_and_the_total(
    app_client: TestClient, admin_headers: dict[str, str], posted: dict[int, int]
) -> None:
    """No parameter: 50 events, createdAt then id descending; `total` counts them all."""
    # given: 40 more events after the fixture's
    later = {"type": "x", "createdBy": "b", "createdAt": "2026-11-23T00:00:00.000Z"}
    app_client.post("/api/events", json=[later] * 40, headers=admin_headers)
    # when
    body = _search(app_client, admin_headers)
    # then
    assert body["total"] == 67
    assert len(body["events"]) == 50
    assert [e.get("producerId") for e in body["events"][40:]] == ALL_NEWEST_FIRST[:10]
    ids = [e["id"] for e in body["events"][:40]]
    assert ids == sorted(ids, reverse=True)


def test_pages_follow_each_other_without_gaps_or_repeats(
    app_client: TestClient, admin_headers: dict[str, str], posted: dict[int, int]
) -> None:
    """offset + limit: the pages together are the whole list, in order."""
    pages = [
        _producer_ids(_search(app_client, admin_headers, offset=str(o), limit="4"))
        for o in range(0, 28, 4)
    ]
    assert [i for page in pages for i in page] == ALL_NEWEST_FIRST


def test_id_filters_by_relay_id(
    app_client: TestClient, admin_headers: dict[str, str], posted: dict[int, int]
) -> None:
    """`id` names relay ids (the ids this API answers), not the producer's."""
    wanted = f"IS_ANY_OF:{posted[3]},{posted[24]},999999"
    body = _search(app_client, admin_headers, id=wanted)
    assert [e["id"] for e in body["events"]] == [posted[24], posted[3]]


def test_days_are_whole_utc_days_both_included(
    app_client: TestClient, admin_headers: dict[str, str]
) -> None:
    """`to=IS:D` keeps D's last millisecond; `from=IS:D+1` starts at its first."""
    times = ["2026-11-20T23:59:59.999Z", "2026-11-21T00:00:00.000Z", "2026-11-21T23:59:59.999Z"]
    times += ["2026-11-22T00:00:00.000Z", "2026-11-21T12:00:00.000+14:00"]  # the last: 20th UTC
    posted = [{"type": "t", "createdBy": "a", "createdAt": t} for t in times]
    ids = app_client.post("/api/events", json=posted, headers=admin_headers).json()["ids"]
    # when
    day = _search(app_client, admin_headers, **{"from": "IS:2026-11-21", "to": "IS:2026-11-21"})
    before = _search(app_client, admin_headers, to="IS:2026-11-20")
    # then
    assert [e["id"] for e in day["events"]] == [ids[2], ids[1]]
    assert [e["id"] for e in before["events"]] == [ids[0], ids[4]]


SUMMARIES = {
    5: ("API token created", "**unleash_system_user** created API token ****"),
    11: (
        "Flag enabled",
        f"**admin** enabled **[demo.flag]({UNLEASH}/projects/default/features/demo.flag)** "
        f"for the **production** environment in project **[default]({UNLEASH}/projects/default)**",
    ),
    1: ("strategy-created", "**migration** triggered **strategy-created**"),
    25: (
        "Flag archived",
        f"**admin** archived **demo.flag** in project **[default]({UNLEASH}/projects/default)**",
    ),
    23: (
        "Flag tagged",
        f"**admin** tagged **[demo.flag]({UNLEASH}/projects/default/features/demo.flag)** "
        f"with **simple:team-a** in project **[default]({UNLEASH}/projects/default)**",
    ),
}


def test_each_event_has_unleash_s_label_and_summary(
    app_client: TestClient, admin_headers: dict[str, str], posted: dict[int, int]
) -> None:
    """As Unleash 8.2 answered for these events; every other field as recorded."""
    body = _search(app_client, admin_headers, limit="100")
    by_producer = {e["producerId"]: e for e in body["events"]}
    for producer_id, (label, summary) in SUMMARIES.items():
        assert (by_producer[producer_id]["label"], by_producer[producer_id]["summary"]) == (
            label,
            summary,
        )
    recorded = app_client.get("/api/admin/events?limit=100", headers=admin_headers).json()
    for event in recorded["events"]:
        searched = by_producer[event["producerId"]]
        assert {k: v for k, v in searched.items() if k not in ("label", "summary")} == event


def test_links_go_to_the_unleash_server_the_events_came_from(
    settings: Settings, redis_client: Redis, admin_headers: dict[str, str]
) -> None:
    """Events of the pull source `unleash` link to RELAY_UNLEASH_URL, as that server would."""
    configured = settings.model_copy(
        update={"unleash_url": "https://unleash.example.com/", "unleash_token": "*:*.x"}
    )
    with TestClient(create_app(configured, redis=redis_client)) as client:
        event = {"type": "project-created", "createdBy": "a", "project": "p1"}
        client.post("/api/events?source=unleash", json=event, headers=admin_headers)
        stale = {**event, "label": "old", "summary": "old"}  # as a pull stores them
        client.post("/api/events?source=other", json=stale, headers=admin_headers)
        body = _search(client, admin_headers)
    expected = "**a** created project **[p1](https://unleash.example.com/projects/p1)**"
    assert [e["summary"] for e in body["events"]] == [expected, expected]
    assert [e["label"] for e in body["events"]] == ["Project created"] * 2
