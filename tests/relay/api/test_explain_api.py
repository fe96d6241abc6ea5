"""GET .../{id}/explain and POST /api/v2/policy-preview: who may call, what they answer,
how they refuse, and that their answers are what fan-out does."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from policies.catalog import RELAY_EVENT_TYPES, RELAY_SOURCE
from relay.api.app import create_app
from relay.settings import Settings
from relay.store import events, subscriptions
from relay.store.client import Redis
from tests.conftest import SHARED
from tests.support import record_event, stored_subscription, subscribe_via_api
from workers.delivery import operational
from workers.delivery.fanout import plan
from workers.delivery.subscription_cache import build_snapshot

PREVIEW = "/api/v2/policy-preview"
SAMPLE = SHARED / "fixtures" / "unleash" / "unleash-8.2.0-events-sample.jsonl"
ALL_FLAGS = "proj/*:env/*:flag/*"
URL = "http://127.0.0.1:9/hook"


def explain_path(sub_id: str, integration: str = "webhook") -> str:
    return f"/api/v2/integrations/{integration}/{sub_id}/explain"


def allow(resources: list[str], actions: list[str] | None = None) -> dict[str, Any]:
    return {"effect": "allow", "resources": resources, "actions": actions or ["*"]}


def deny(resources: list[str], actions: list[str] | None = None) -> dict[str, Any]:
    return {"effect": "deny", "resources": resources, "actions": actions or ["*"]}


@pytest.fixture
def token_for(
    app_client: TestClient, admin_headers: dict[str, str]
) -> Callable[[str], dict[str, str]]:
    """Headers of a new token of the given role, created over the API."""

    def make(role: str) -> dict[str, str]:
        body = {"name": role, "role": role}
        created = app_client.post("/api/v2/tokens", json=body, headers=admin_headers)
        assert created.status_code == 201, created.text
        return {"Authorization": created.json()["token"]}

    return make


@pytest.fixture
def reader(token_for: Callable[[str], dict[str, str]]) -> dict[str, str]:
    return token_for("reader")


def problems(response: Any) -> list[str]:
    """The attributes a 400 in the seeds' shape names."""
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["code"] == "invalid_request"
    return [error["attribute"] for error in body["errors"]]


# --- who may call


def test_both_routes_want_a_token_that_may_read(
    app_client: TestClient,
    redis_client: Redis,
    admin_headers: dict[str, str],
    token_for: Callable[[str], dict[str, str]],
) -> None:
    """No token: 401; an ingest-only token: 403; a reader: 200."""
    sub_id = subscribe_via_api(app_client, URL, name="s", headers=admin_headers)
    event_id = record_event(redis_client)
    calls = [
        ("GET", explain_path(sub_id), {"params": {"eventId": event_id}}),
        ("POST", PREVIEW, {"json": {"statements": []}}),
    ]
    for method, path, arguments in calls:
        anonymous = app_client.request(method, path, **arguments)
        ingest = app_client.request(method, path, headers=token_for("ingest"), **arguments)
        reading = app_client.request(method, path, headers=token_for("reader"), **arguments)

        assert (anonymous.status_code, anonymous.json()["code"]) == (401, "unauthorized")
        assert (ingest.status_code, ingest.json()["code"]) == (403, "forbidden")
        assert reading.status_code == 200, reading.text


# --- explain


def test_explain_answers_with_each_statement_and_what_decided(
    app_client: TestClient,
    redis_client: Redis,
    admin_headers: dict[str, str],
    reader: dict[str, str],
) -> None:
    """The event's resource and actions, each statement's clauses, the deciding statement."""
    statements = [allow([ALL_FLAGS]), deny(["proj/*:env/production:flag/*"], ["updateOn"])]
    sub_id = subscribe_via_api(
        app_client, URL, name="s", headers=admin_headers, statements=statements
    )
    event_id = record_event(
        redis_client,
        type="feature-environment-enabled",
        project="web",
        environment="production",
        featureName="checkout",
    )

    response = app_client.get(explain_path(sub_id), params={"eventId": event_id}, headers=reader)

    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["included"] is False
    assert answer["subscriptionOn"] is True
    assert answer["decidedBy"] == 1
    assert answer["event"] == {"id": event_id, "type": "feature-environment-enabled"}
    assert answer["resource"] == "proj/web:env/production:flag/checkout"
    assert answer["actions"] == ["updateOn", "feature-environment-enabled"]
    shown = answer["statements"]
    assert [
        (s["effect"], s["resourceMatched"], s["actionMatched"], s["matched"]) for s in shown
    ] == [
        ("allow", True, True, True),
        ("deny", True, True, True),
    ]
    assert answer["statements"][1]["resources"] == ["proj/*:env/production:flag/*"]
    assert "excluded by statement 1 (deny)" in answer["reason"]


def test_explain_of_an_off_subscription_says_it_is_off(
    app_client: TestClient,
    redis_client: Redis,
    admin_headers: dict[str, str],
    reader: dict[str, str],
) -> None:
    """`subscriptionOn` false, the policy's answer kept, the reason saying it is off."""
    sub_id = subscribe_via_api(app_client, URL, name="s", headers=admin_headers, on=False)
    event_id = record_event(redis_client)

    answer = app_client.get(
        explain_path(sub_id), params={"eventId": event_id}, headers=reader
    ).json()

    assert (answer["included"], answer["subscriptionOn"]) == (True, False)
    assert answer["reason"].startswith("the subscription is off")


def test_explain_follows_a_changed_policy(
    app_client: TestClient,
    redis_client: Redis,
    admin_headers: dict[str, str],
    reader: dict[str, str],
) -> None:
    """After a PATCH of the statements, explain answers for the new ones."""
    sub_id = subscribe_via_api(
        app_client, URL, name="s", headers=admin_headers, statements=[allow([ALL_FLAGS])]
    )
    event_id = record_event(redis_client)

    def included() -> bool:
        answer = app_client.get(explain_path(sub_id), params={"eventId": event_id}, headers=reader)
        return bool(answer.json()["included"])

    before = included()
    patch = [{"op": "replace", "path": "/statements", "value": [allow(["proj/*"])]}]
    changed = app_client.patch(
        f"/api/v2/integrations/webhook/{sub_id}", json=patch, headers=admin_headers
    )

    assert changed.status_code == 200, changed.text
    assert (before, included()) == (True, False)


def test_explain_answers_404_for_what_does_not_exist(
    app_client: TestClient,
    redis_client: Redis,
    admin_headers: dict[str, str],
    reader: dict[str, str],
) -> None:
    """An unknown subscription, another integration's key, an unknown event: 404 each."""
    sub_id = subscribe_via_api(app_client, URL, name="s", headers=admin_headers)
    event_id = record_event(redis_client)
    cases = [
        (explain_path("0" * 24), event_id, "no subscription"),
        (explain_path(sub_id, "slack"), event_id, "no subscription"),
        (explain_path(sub_id, "no-such-integration"), event_id, "no subscription"),
        (explain_path(sub_id), event_id + 1, f"no event {event_id + 1}"),
    ]
    for path, asked, message in cases:
        response = app_client.get(path, params={"eventId": asked}, headers=reader)

        assert response.status_code == 404, (path, response.text)
        assert response.json()["code"] == "not_found"
        assert message in response.json()["message"]


@pytest.mark.parametrize("event_id", ["abc", "-1", "0", str(10**30), "1.5", "", "1e3"])
def test_explain_refuses_an_event_id_that_is_not_a_relay_id(
    app_client: TestClient, admin_headers: dict[str, str], reader: dict[str, str], event_id: str
) -> None:
    """Not a positive 64-bit integer: 400 naming eventId."""
    sub_id = subscribe_via_api(app_client, URL, name="s", headers=admin_headers)

    response = app_client.get(explain_path(sub_id), params={"eventId": event_id}, headers=reader)

    assert problems(response) == ["eventId"]


def test_explain_without_an_event_id_is_refused(
    app_client: TestClient, admin_headers: dict[str, str], reader: dict[str, str]
) -> None:
    """eventId is required."""
    sub_id = subscribe_via_api(app_client, URL, name="s", headers=admin_headers)

    assert problems(app_client.get(explain_path(sub_id), headers=reader)) == ["eventId"]


# --- preview


def test_preview_answers_the_most_recent_events_newest_first(
    app_client: TestClient, redis_client: Redis, reader: dict[str, str]
) -> None:
    """100 by default, newest first, each with its answer; `included` counts them."""
    ids = [
        record_event(redis_client, featureName=f"flag-{n}", environment=env)
        for n in range(60)
        for env in ("production", "staging")
    ]
    statements = [allow(["proj/*:env/production:flag/*"])]

    answer = app_client.post(PREVIEW, json={"statements": statements}, headers=reader).json()

    assert [item["eventId"] for item in answer["items"]] == ids[::-1][:100]
    assert answer["total"] == 100
    assert answer["included"] == 50
    first = answer["items"][0]
    assert set(first) == {"eventId", "type", "createdAt", "included", "reason", "decidedBy"}
    assert (first["included"], first["decidedBy"]) == (False, None)
    assert (answer["items"][1]["included"], answer["items"][1]["decidedBy"]) == (True, 0)


def test_preview_limit_is_between_1_and_1000(
    app_client: TestClient, redis_client: Redis, reader: dict[str, str]
) -> None:
    """`limit` 1 and 1000 are answered; 0, 1001, 10**9 and non-integers are 400."""
    for _ in range(3):
        record_event(redis_client)

    one = app_client.post(PREVIEW, json={"statements": [], "limit": 1}, headers=reader)
    most = app_client.post(PREVIEW, json={"statements": [], "limit": 1000}, headers=reader)

    assert (one.json()["total"], most.json()["total"]) == (1, 3)
    for limit in (0, 1001, 10**9, 10**30, -1, "5", 2.5, True, None):
        body = {"statements": [], "limit": limit}
        assert problems(app_client.post(PREVIEW, json=body, headers=reader)) == ["limit"], limit


@pytest.mark.parametrize(
    ("body", "attribute"),
    [
        ({}, "statements"),
        ({"statements": None}, "statements"),
        ({"statements": "allow"}, "statements"),
        ({"statements": [], "extra": 1}, "extra"),
        ({"statements": [{"effect": "permit", "resources": ["proj/*"]}]}, "statements[0].effect"),
        ({"statements": [{"effect": "allow", "actions": ["*"]}]}, "statements[0].resources"),
        (
            {"statements": [{"effect": "allow", "resources": ["flg/*"], "actions": ["*"]}]},
            "statements[0].resources[0]",
        ),
        (
            {"statements": [{"effect": "allow", "resources": ["proj/*"], "actions": [1]}]},
            "statements[0].actions[0]",
        ),
    ],
)
def test_preview_refuses_statements_as_a_subscription_would(
    app_client: TestClient, reader: dict[str, str], body: dict[str, Any], attribute: str
) -> None:
    """Invalid statements: 400 naming the attribute, as subscription validation does."""
    response = app_client.post(PREVIEW, json=body, headers=reader)

    assert problems(response) == [attribute]


# --- hostile input


def test_preview_refuses_ten_thousand_statements(
    app_client: TestClient, reader: dict[str, str]
) -> None:
    """Past RELAY_MAX_STATEMENTS: 400 before any statement is parsed."""
    statements = [allow([f"proj/p{n}"]) for n in range(10_000)]

    response = app_client.post(PREVIEW, json={"statements": statements}, headers=reader)

    assert problems(response) == ["statements"]
    assert "RELAY_MAX_STATEMENTS" in response.json()["errors"][0]["reason"]


def test_preview_refuses_too_many_policy_entries(
    app_client: TestClient, reader: dict[str, str]
) -> None:
    """Past RELAY_MAX_POLICY_ENTRIES (250 by default): 400 naming where the count passed it."""
    statements = [allow([f"proj/p{n}" for n in range(200)]), allow(["proj/*"] * 60)]

    response = app_client.post(PREVIEW, json={"statements": statements}, headers=reader)

    assert problems(response) == ["statements[1].resources"]
    assert "RELAY_MAX_POLICY_ENTRIES" in response.json()["errors"][0]["reason"]


def test_preview_refuses_huge_strings(app_client: TestClient, reader: dict[str, str]) -> None:
    """A specifier or action past 512 characters: 400 naming it, not a slow parse."""
    huge = "proj/" + "a" * 1_000_000
    statements = [allow([huge]), allow(["proj/*"], ["x" * 600])]

    response = app_client.post(PREVIEW, json={"statements": statements}, headers=reader)

    assert problems(response) == ["statements[0].resources[0]", "statements[1].actions[0]"]


def test_preview_body_is_bounded_by_the_api_body_limit(
    settings: Settings, redis_client: Redis, admin_headers: dict[str, str]
) -> None:
    """A body over RELAY_MAX_BODY_BYTES: 413, whatever it holds."""
    small = settings.model_copy(update={"max_body_bytes": 4096})
    body = {"statements": [allow(["proj/*"], ["a" * 5000])]}

    with TestClient(create_app(small, redis=redis_client)) as client:
        response = client.post(PREVIEW, json=body, headers=admin_headers)

    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"


def test_preview_of_malformed_json_is_a_400(app_client: TestClient, reader: dict[str, str]) -> None:
    """Not JSON: 400 in the seeds' shape."""
    headers = {**reader, "Content-Type": "application/json"}

    response = app_client.post(PREVIEW, content=b'{"statements": [', headers=headers)

    assert problems(response) == ["body"]


# --- the answers are fan-out's


POLICIES: list[list[dict[str, Any]]] = [
    [],
    [allow([ALL_FLAGS])],
    [allow([ALL_FLAGS]), deny(["proj/*:env/*;{critical:true}:flag/*"], ["update*"])],
    [allow(["proj/*:env/*:flag/*;simple:team-a", "strategy/*"], ["*"])],
    [{"effect": "allow", "notResources": [ALL_FLAGS], "notActions": ["createStrategy"]}],
    [allow(["integration/*"], ["delivery-dead", "subscription-*"])],
]


def record_mixed_events(client: Redis, about: str) -> list[int]:
    """Unleash's sample events, flag events in two environments, tagged and not, and relay's
    own events about `about` and about another subscription."""
    sample = [json.loads(line) for line in SAMPLE.read_text().splitlines()]
    flags = [
        {
            "type": kind,
            "createdBy": "alice",
            "project": "web",
            "environment": env,
            "featureName": "checkout",
            "tags": [{"type": "simple", "value": "team-a"}] if tagged else [],
        }
        for kind in ("feature-environment-enabled", "feature-created", "feature-tagged")
        for env in ("production", "staging", None)
        for tagged in (True, False)
    ]
    ids = events.record_events(client, events=[*sample, *flags], source="unleash")
    other = subscriptions.get_subscription(client, sub_id=about)
    assert other is not None
    notices = [
        operational.Notice(operational.DELIVERY_DEAD, other),
        operational.Notice(operational.FAILING, other),
    ]
    return ids + operational.record(client, notices, now_ms=0)


def fanned_out(client: Redis, settings: Settings, event_ids: list[int]) -> set[tuple[str, int]]:
    """(subscription, event) of each delivery fan-out plans for these events."""
    snapshot = build_snapshot(
        client,
        version=subscriptions.subscriptions_version(client),
        critical=settings.critical_set,
    )
    recorded = list(zip(event_ids, events.get_events(client, ids=event_ids), strict=True))
    return {(new.sub_id, new.event_id or 0) for new in plan(snapshot, recorded)}


def test_preview_and_explain_include_exactly_what_fan_out_delivers(
    app_client: TestClient,
    redis_client: Redis,
    settings: Settings,
    admin_headers: dict[str, str],
    reader: dict[str, str],
) -> None:
    """For each policy, a subscription with it gets a delivery of exactly the events
    preview and explain say it includes."""
    # given: one subscription per policy, and a bystander that relay's events are about
    bystander = subscribe_via_api(app_client, URL, name="bystander", headers=admin_headers)
    subs = [
        subscribe_via_api(app_client, URL, name=f"p{n}", headers=admin_headers, statements=p)
        for n, p in enumerate(POLICIES)
    ]
    event_ids = record_mixed_events(redis_client, about=bystander)

    # when: fan-out plans the deliveries, and preview and explain answer
    delivered = fanned_out(redis_client, settings, event_ids)
    for sub_id, statements in zip(subs, POLICIES, strict=True):
        body = {"statements": statements, "limit": 1000}
        previewed = app_client.post(PREVIEW, json=body, headers=reader).json()
        explained = {
            event_id: app_client.get(
                explain_path(sub_id), params={"eventId": event_id}, headers=reader
            ).json()["included"]
            for event_id in event_ids
        }

        # then: all three agree on every event
        expected = {event_id for event_id in event_ids if (sub_id, event_id) in delivered}
        assert 0 < len(expected) < len(event_ids)  # each policy takes some and leaves some
        assert previewed["total"] == len(event_ids)
        assert {i["eventId"] for i in previewed["items"] if i["included"]} == expected, statements
        assert previewed["included"] == len(expected)
        assert {event_id for event_id, yes in explained.items() if yes} == expected, statements


def test_explain_agrees_with_fan_out_on_relay_events_about_the_subscription(
    app_client: TestClient,
    redis_client: Redis,
    settings: Settings,
    admin_headers: dict[str, str],
    reader: dict[str, str],
) -> None:
    """relay's events about a subscription that asks for them: not delivered, not included."""
    statements = [allow(["integration/*"], ["*"])]
    sub_id = subscribe_via_api(
        app_client, URL, name="s", headers=admin_headers, statements=statements
    )
    notice = operational.Notice(operational.DISABLED, stored_subscription(redis_client, sub_id))
    [event_id] = operational.record(redis_client, [notice], now_ms=0)

    answer = app_client.get(explain_path(sub_id), params={"eventId": event_id}, headers=reader)

    assert (sub_id, event_id) not in fanned_out(redis_client, settings, [event_id])
    assert answer.json()["included"] is False
    assert answer.json()["decidedBy"] == 0
    assert "never sent to it" in answer.json()["reason"]


def test_relay_event_types_are_the_ones_fan_out_knows() -> None:
    """Explain judges relay's own events by the catalog's types; fan-out by operational's."""
    assert set(RELAY_EVENT_TYPES) == operational.TYPES
    assert RELAY_SOURCE == operational.SOURCE


def test_explanations_list_every_subscription_and_count_those_that_include(
    app_client: TestClient,
    redis_client: Redis,
    admin_headers: dict[str, str],
    reader: dict[str, str],
) -> None:
    """GET /api/v2/events/{id}/explanations: each subscription's explanation (the same as
    its own explain route gives), paged in creation order, and the count that include it."""
    policies = [
        [allow(["proj/web:env/*:flag/*"])],
        [deny([ALL_FLAGS])],
        [],  # no statements: everything
        [allow(["proj/api:env/*:flag/*"])],
    ]
    sub_ids = [
        subscribe_via_api(app_client, URL, name=f"s{n}", headers=admin_headers, statements=p)
        for n, p in enumerate(policies)
    ]
    event_id = record_event(
        redis_client, type="feature-updated", project="web", featureName="checkout"
    )
    path = f"/api/v2/events/{event_id}/explanations"

    answer = app_client.get(path, headers=reader).json()
    page = app_client.get(path, params={"offset": 1, "limit": 2}, headers=reader).json()

    assert [item["subscription"]["_id"] for item in answer["items"]] == sub_ids
    assert [item["explanation"]["included"] for item in answer["items"]] == [
        True,
        False,
        True,
        False,
    ]
    assert (answer["totalCount"], answer["included"]) == (4, 2)
    own = app_client.get(explain_path(sub_ids[1]), params={"eventId": event_id}, headers=reader)
    assert answer["items"][1]["explanation"] == own.json()
    assert answer["items"][0]["subscription"] == {
        "_id": sub_ids[0],
        "kind": "webhook",
        "name": "s0",
        "on": True,
    }
    assert [item["subscription"]["_id"] for item in page["items"]] == sub_ids[1:3]
    assert (page["totalCount"], page["included"]) == (4, 2)


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/api/v2/events/999999/explanations", 404),
        ("/api/v2/events/abc/explanations", 400),
        ("/api/v2/events/0/explanations", 400),
        (f"/api/v2/events/{10**30}/explanations", 400),
        ("/api/v2/events/1/explanations?limit=0", 400),
        ("/api/v2/events/1/explanations?limit=1001", 400),
        ("/api/v2/events/1/explanations?offset=-1", 400),
    ],
)
def test_explanations_refuse_what_is_not_there_or_out_of_bounds(
    app_client: TestClient, redis_client: Redis, reader: dict[str, str], path: str, status: int
) -> None:
    record_event(redis_client, type="feature-updated", project="web", featureName="f")
    response = app_client.get(path, headers=reader)
    assert response.status_code == status, response.text
    assert response.json()["code"] in ("not_found", "invalid_request")
