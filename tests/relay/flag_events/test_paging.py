"""Paging the flag-events API with `after` and `before`, its defaults and its time window."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient
from launchdarkly_api import ApiClient, Configuration, InsightsFlagEventsBetaApi
from launchdarkly_api.models.flag_event_collection_rep import FlagEventCollectionRep

from tests.support import post_events

MINUTE = 60_000
DAY = 86_400_000
NOW = int(time.time() * 1000)
T = NOW - 3 * 60 * MINUTE


@pytest.fixture
def ld(live_api: str, admin_headers: dict[str, str]) -> Iterator[InsightsFlagEventsBetaApi]:
    """The official client's flag-events API, pointed at the relay."""
    configuration = Configuration(host=live_api, api_key={"ApiKey": admin_headers["Authorization"]})
    with ApiClient(configuration) as client:
        yield InsightsFlagEventsBetaApi(client)


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")


def _event(flag: str, at: int, environment: str | None = "production") -> dict[str, Any]:
    return {
        "type": "feature-environment-enabled" if environment else "feature-tagged",
        "createdBy": "alice@example.com",
        "createdAt": _iso(at),
        "featureName": flag,
        "project": "default",
        "environment": environment,
    }


@pytest.fixture
def history(app_client: TestClient, admin_headers: dict[str, str]) -> None:
    """Thirty-three events in threes sharing a millisecond, some global, three flags; noise."""
    events = [
        _event("abc"[i % 3], T + (i // 3) * 1000, None if i % 4 == 0 else "production")
        for i in range(33)
    ]
    events += [_event("a", T, "staging"), {**_event("a", T), "project": "other"}]
    post_events(app_client, events, headers=admin_headers)
    bucket = {"start": _iso(T), "stop": _iso(T + 1000), "toggles": {"b": {"yes": 1, "no": 1}}}
    body = {"appName": "web", "environment": "production", "bucket": bucket}
    assert (
        app_client.post("/api/client/metrics", json=body, headers=admin_headers).status_code == 202
    )


def _cursor(page: FlagEventCollectionRep, rel: str) -> dict[str, Any] | None:
    """The paging arguments of a `_links` entry (None when the link is absent)."""
    link = (page.links or {}).get(rel)
    if link is None:
        return None
    assert link.href is not None
    query = {key: values[0] for key, values in parse_qs(urlsplit(link.href).query).items()}
    arguments: dict[str, Any] = {"var_from": int(query["from"]), "to": int(query["to"])}
    for name in ("after", "before"):
        if name in query:
            arguments[name] = query[name]
    return arguments


FILTERS: list[dict[str, Any]] = [
    {},
    {"query": "a"},
    {"var_global": "exclude"},
    {"has_experiments": False},
    {"application_key": "web"},
    {"impact_size": "none"},
]


@pytest.mark.usefixtures("history")
@pytest.mark.parametrize("filters", FILTERS, ids=lambda f: ",".join(f) or "none")
def test_walk_forward_with_after_and_back_with_before(
    ld: InsightsFlagEventsBetaApi, filters: dict[str, Any]
) -> None:
    """Following next then prev links visits every match once, in order, both ways."""
    # given
    everything = ld.get_flag_events("default", "production", limit=100, **filters)
    expected = [item.id for item in everything.items]
    assert len(expected) == everything.total_count > 4
    # when: forward, four at a time
    pages = [ld.get_flag_events("default", "production", limit=4, **filters)]
    assert _cursor(pages[0], "prev") is None
    while (forward := _cursor(pages[-1], "next")) is not None:
        pages.append(ld.get_flag_events("default", "production", limit=4, **filters, **forward))
    # then
    assert [item.id for page in pages for item in page.items] == expected
    assert all(page.total_count == len(expected) for page in pages)
    assert all(len(page.items) == 4 for page in pages[:-1])
    # when: back from the last page
    back = [pages[-1]]
    while (backward := _cursor(back[0], "prev")) is not None:
        back.insert(0, ld.get_flag_events("default", "production", limit=4, **filters, **backward))
    # then
    assert [[item.id for item in page.items] for page in back] == [
        [item.id for item in page.items] for page in pages
    ]


@pytest.mark.usefixtures("history")
def test_order_is_newest_first_with_ties_by_id(ld: InsightsFlagEventsBetaApi) -> None:
    """Newest first; events of the same millisecond keep one fixed order."""
    items = ld.get_flag_events("default", "production", limit=100).items
    times = [item.event_time for item in items]
    assert times == sorted(times, reverse=True)
    assert len(set(times)) < len(times)
    again = ld.get_flag_events("default", "production", limit=100).items
    assert [i.id for i in again] == [i.id for i in items]


def test_defaults_are_the_last_seven_days_and_twenty_items(
    ld: InsightsFlagEventsBetaApi, app_client: TestClient, admin_headers: dict[str, str]
) -> None:
    """Without from/to the window is the last 7 days; without limit a page has 20 items."""
    # given
    recent = [_event("f", NOW - 60 * MINUTE + i) for i in range(25)]
    old = [_event("f", NOW - 6 * DAY), _event("f", NOW - 8 * DAY)]
    post_events(app_client, recent + old, headers=admin_headers)
    # when
    page = ld.get_flag_events("default", "production")
    wider = ld.get_flag_events("default", "production", var_from=NOW - 9 * DAY)
    # then
    assert (len(page.items), page.total_count) == (20, 26)
    assert _cursor(page, "next") is not None
    assert wider.total_count == 27


def test_from_and_to_bound_the_window_inclusively(
    ld: InsightsFlagEventsBetaApi, app_client: TestClient, admin_headers: dict[str, str]
) -> None:
    """Events at exactly `from` or `to` are in; one millisecond outside is not."""
    post_events(
        app_client, [_event("f", T - 1), _event("f", T), _event("f", T + 10)], headers=admin_headers
    )
    post_events(app_client, [_event("f", T + 11)], headers=admin_headers)
    page = ld.get_flag_events("default", "production", var_from=T, to=T + 10)
    assert [item.event_time for item in page.items] == [T + 10, T]
    assert page.total_count == 2


def test_links_keep_the_request_and_pin_the_window(
    ld: InsightsFlagEventsBetaApi, app_client: TestClient, admin_headers: dict[str, str]
) -> None:
    """`self` is the request; `next` repeats its filters with the window fixed."""
    post_events(app_client, [_event("f", T + i) for i in range(3)], headers=admin_headers)
    page = ld.get_flag_events("default", "production", query="f", limit=2)
    assert page.links is not None
    assert page.links["self"].href == (
        "/api/v2/engineering-insights/flag-events"
        "?projectKey=default&environmentKey=production&query=f&limit=2"
    )
    following = _cursor(page, "next")
    assert following is not None and following["after"] == f"{T + 1}.2"
    next_href = page.links["next"].href or ""
    assert "query=f" in next_href and "limit=2" in next_href
    assert page.links["next"].type == "application/json"
