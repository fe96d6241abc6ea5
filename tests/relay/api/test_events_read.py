"""Unleash's Events API over recorded events; every seed and fixture event round-trips."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

SHARED = Path(__file__).resolve().parents[2] / "data" / "shared"
SEED = SHARED / "seeds" / "003_3600444e12c585fa.txt"
FIXTURE = SHARED / "fixtures" / "unleash" / "unleash-8.2.0-events-sample.jsonl"


def seed_examples() -> list[dict[str, Any]]:
    """The JSON examples of seed 003 that parse and are events (have a `type`)."""
    text = SEED.read_text()
    decoder = json.JSONDecoder()
    found = []
    for start in re.finditer(r"^\{", text, re.MULTILINE):
        try:
            value, _ = decoder.raw_decode(text, start.start())
        except ValueError:
            continue  # a truncated example
        if isinstance(value, dict) and "type" in value:
            found.append(value)
    return found


def fixture_events() -> list[dict[str, Any]]:
    return [json.loads(line) for line in FIXTURE.read_text().splitlines()]


def _recorded(posted: dict[str, Any], relay_id: int, source: str) -> dict[str, Any]:
    """The documented contract: `id` is the relay id; `producerId` and `source` are added."""
    return {**posted, "id": relay_id, "producerId": posted["id"], "source": source}


def _events(client: TestClient, headers: dict[str, str], path: str, **params: Any) -> Any:
    response = client.get(path, params=params, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def test_the_seed_has_examples_of_most_event_types() -> None:
    """Guard for the round trip below: the seed parser finds the examples."""
    examples = seed_examples()
    assert len(examples) >= 50
    assert {"feature-created", "segment-updated", "project-import"} <= {e["type"] for e in examples}


def test_every_seed_and_fixture_event_round_trips_through_both_read_endpoints(
    app_client: TestClient, admin_headers: dict[str, str]
) -> None:
    """Posted as Unleash sends them, read back identical plus relay id, producerId, source."""
    # given: seed examples one by one (some share a producer id), the fixtures as one batch
    expected: dict[int, dict[str, Any]] = {}
    for n, example in enumerate(seed_examples()):
        source = f"seed-{n}"
        response = app_client.post(
            f"/api/events?source={source}", json=example, headers=admin_headers
        )
        assert response.status_code == 202, (example["type"], response.text)
        [relay_id] = response.json()["ids"]
        expected[relay_id] = _recorded(example, relay_id, source)
    fixtures = fixture_events()
    response = app_client.post("/api/events?source=unleash", json=fixtures, headers=admin_headers)
    assert response.status_code == 202
    for posted, relay_id in zip(fixtures, response.json()["ids"], strict=True):
        expected[relay_id] = _recorded(posted, relay_id, "unleash")
    # when
    listed = _events(app_client, admin_headers, "/api/admin/events", limit=1000)
    # then
    assert listed["version"] == 1
    assert listed["totalEvents"] == len(expected)
    assert listed["events"] == [expected[i] for i in sorted(expected, reverse=True)]
    for name in {e["featureName"] for e in expected.values() if e.get("featureName")}:
        toggle = _events(app_client, admin_headers, f"/api/admin/events/{name}")
        mine = [expected[i] for i in sorted(expected, reverse=True)]
        assert toggle["toggleName"] == name
        assert toggle["events"] == [e for e in mine if e.get("featureName") == name]
    for project in {e["project"] for e in expected.values() if e.get("project")}:
        by_project = _events(app_client, admin_headers, "/api/admin/events", project=project)
        assert by_project["events"] == [
            expected[i]
            for i in sorted(expected, reverse=True)
            if expected[i].get("project") == project
        ]


@pytest.fixture
def many_events(app_client: TestClient, admin_headers: dict[str, str]) -> list[int]:
    """130 events: 120 in project `big` (every third of them for flag `f`), 10 elsewhere."""
    batch = [
        {
            "id": n,
            "type": "feature-updated",
            "createdBy": "u",
            "project": "big" if n < 120 else "other",
            "featureName": "f" if n % 3 == 0 else f"g{n}",
        }
        for n in range(130)
    ]
    response = app_client.post("/api/events", json=batch, headers=admin_headers)
    ids: list[int] = response.json()["ids"]
    return ids


def _ids(body: Any) -> list[int]:
    return [event["id"] for event in body["events"]]


def test_without_project_the_last_100_come_newest_first(
    app_client: TestClient, admin_headers: dict[str, str], many_events: list[int]
) -> None:
    """The default answer: the newest 100, and the total count of events."""
    body = _events(app_client, admin_headers, "/api/admin/events")
    assert _ids(body) == sorted(many_events, reverse=True)[:100]
    assert body["totalEvents"] == 130


def test_with_project_all_of_its_events_come_back(
    app_client: TestClient, admin_headers: dict[str, str], many_events: list[int]
) -> None:
    """`?project=` returns all of that project's events, not just 100."""
    body = _events(app_client, admin_headers, "/api/admin/events", project="big")
    assert _ids(body) == sorted(many_events[:120], reverse=True)
    assert body["totalEvents"] == 120


def test_limit_and_offset_narrow_the_answer(
    app_client: TestClient, admin_headers: dict[str, str], many_events: list[int]
) -> None:
    """`limit` and `offset` page through newest first; the total stays the whole count."""
    newest = sorted(many_events, reverse=True)
    body = _events(app_client, admin_headers, "/api/admin/events", limit=5, offset=10)
    assert _ids(body) == newest[10:15]
    assert body["totalEvents"] == 130
    page = _events(
        app_client, admin_headers, "/api/admin/events", project="big", limit=3, offset=117
    )
    assert _ids(page) == sorted(many_events[:120], reverse=True)[117:]


def test_a_toggles_events_come_newest_first(
    app_client: TestClient, admin_headers: dict[str, str], many_events: list[int]
) -> None:
    """`/api/admin/events/{featureName}` gives that toggle's events only."""
    body = _events(app_client, admin_headers, "/api/admin/events/f")
    expected = sorted((i for n, i in enumerate(many_events) if n % 3 == 0), reverse=True)
    assert body["toggleName"] == "f"
    assert _ids(body) == expected
    assert body["totalEvents"] == len(expected)
    assert _ids(_events(app_client, admin_headers, "/api/admin/events/f", limit=2)) == expected[:2]


def test_an_unknown_toggle_has_no_events(
    app_client: TestClient, admin_headers: dict[str, str]
) -> None:
    """A toggle nobody recorded events for: an empty list, not an error."""
    body = _events(app_client, admin_headers, "/api/admin/events/nope")
    assert body == {"version": 1, "toggleName": "nope", "events": [], "totalEvents": 0}


@pytest.mark.parametrize(
    ("params", "attribute"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 1001}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"offset": -1}, "offset"),
        ({"offset": "x"}, "offset"),
    ],
)
@pytest.mark.parametrize("path", ["/api/admin/events", "/api/admin/events/f"])
def test_a_bad_limit_or_offset_is_400(
    app_client: TestClient,
    admin_headers: dict[str, str],
    path: str,
    params: dict[str, Any],
    attribute: str,
) -> None:
    """Paging parameters are checked, and the bad one is named."""
    response = app_client.get(path, params=params, headers=admin_headers)
    assert response.status_code == 400
    assert [e["attribute"] for e in response.json()["errors"]] == [attribute]
