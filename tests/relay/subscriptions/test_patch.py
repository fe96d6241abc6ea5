"""PATCH of audit-log subscriptions: JSON Patch semantics, secrets, concurrency, atomicity."""

from __future__ import annotations

import threading
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from relay import clock
from relay.api.app import create_app
from relay.settings import Settings
from relay.store import subscription_status, subscriptions
from relay.store.client import Redis
from relay.store.subscriptions import SECRET_OVERLAP_MS
from relay.subscriptions.urls import MASK
from tests.support import stored_subscription

BASE = "/api/v2/integrations/webhook"
SECRET = "whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVowMTIzNDU="
NEW_SECRET = "whsec_" + "WllYV1ZVVFNSUVBPTk1MS0pJSEdGRURDQkE5ODc2NTQ="


@pytest.fixture
def sub(app_client: TestClient, admin_headers: dict[str, str]) -> dict[str, Any]:
    """A subscription with a known secret and a credential header."""
    body = {
        "name": "audit",
        "config": {
            "url": "https://hooks.example.com/a",
            "secret": SECRET,
            "headers": {"X-Api-Key": "key-0123456789", "X-Team": "ops"},
        },
        "statements": [{"effect": "allow", "resources": ["proj/*"], "actions": ["*"]}],
        "on": True,
        "tags": ["ops"],
    }
    response = app_client.post(BASE, json=body, headers=admin_headers)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def _patch(
    app_client: TestClient, headers: dict[str, str], sub_id: str, body: Any
) -> httpx.Response:
    return app_client.patch(f"{BASE}/{sub_id}", json=body, headers=headers)


def test_replace_add_remove_apply(
    app_client: TestClient, admin_headers: dict[str, str], sub: dict[str, Any]
) -> None:
    """replace, add and remove operations apply in order and the answer shows the result."""
    response = _patch(
        app_client,
        admin_headers,
        sub["_id"],
        [
            {"op": "replace", "path": "/name", "value": "renamed"},
            {"op": "add", "path": "/tags/-", "value": "beta"},
            {"op": "remove", "path": "/tags/0"},
            {
                "op": "add",
                "path": "/statements/-",
                "value": {"effect": "deny", "resources": ["proj/x"], "actions": ["delete*"]},
            },
            {"op": "replace", "path": "/config/format", "value": "launchdarkly"},
        ],
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["name"] == "renamed" and body["tags"] == ["beta"]
    assert body["statements"][1] == {
        "effect": "deny",
        "resources": ["proj/x"],
        "actions": ["delete*"],
    }
    assert body["config"]["format"] == "launchdarkly"
    assert app_client.get(f"{BASE}/{sub['_id']}", headers=admin_headers).json() == body


def test_envelope_with_comment_is_accepted(
    app_client: TestClient, admin_headers: dict[str, str], sub: dict[str, Any]
) -> None:
    """LaunchDarkly's {comment, patch} envelope applies its patch."""
    body = {
        "comment": "quiet for the night",
        "patch": [{"op": "replace", "path": "/on", "value": False}],
    }
    response = _patch(app_client, admin_headers, sub["_id"], body)
    assert response.status_code == 200 and response.json()["on"] is False


def test_passing_test_operation_applies(
    app_client: TestClient, admin_headers: dict[str, str], sub: dict[str, Any]
) -> None:
    """A test operation that holds lets the following operations apply."""
    patch = [
        {"op": "test", "path": "/name", "value": "audit"},
        {"op": "test", "path": "/config/secret", "value": sub["config"]["secret"]},
        {"op": "replace", "path": "/name", "value": "checked"},
    ]
    response = _patch(app_client, admin_headers, sub["_id"], patch)
    assert response.status_code == 200 and response.json()["name"] == "checked"


@pytest.mark.parametrize(
    "test_op",
    [
        {"op": "test", "path": "/name", "value": "other"},
        {"op": "test", "path": "/on", "value": 1},  # JSON true is not 1
        {
            "op": "test",
            "path": "/config/secret",
            "value": SECRET,
        },  # only the masked form is visible
        {"op": "test", "path": "/missing", "value": None},
    ],
)
def test_failed_test_operation_is_409_and_changes_nothing(
    app_client: TestClient,
    admin_headers: dict[str, str],
    redis_client: Redis,
    sub: dict[str, Any],
    test_op: dict[str, Any],
) -> None:
    """A failed test answers 409 optimistic_locking_error and applies none of the patch."""
    # given
    before = stored_subscription(redis_client, sub["_id"])
    version = subscriptions.subscriptions_version(redis_client)
    # when
    response = _patch(
        app_client,
        admin_headers,
        sub["_id"],
        [{"op": "replace", "path": "/name", "value": "x"}, test_op],
    )
    # then
    assert response.status_code == 409
    assert response.json()["code"] == "optimistic_locking_error"
    assert stored_subscription(redis_client, sub["_id"]) == before
    assert subscriptions.subscriptions_version(redis_client) == version


@pytest.mark.parametrize(
    ("body", "attribute"),
    [
        ({"op": "replace", "path": "/name", "value": "x"}, "body"),
        ("replace name", "body"),
        ({"patch": {"op": "replace"}}, "patch"),
        ({"comment": "no patch"}, "patch"),
        ({"comment": 5, "patch": []}, "comment"),
        ({"patch": [], "extra": 1}, "extra"),
        (["replace"], "[0]"),
        ([{"op": "frobnicate", "path": "/name"}], "[0]"),
        ([{"path": "/name", "value": "x"}], "[0]"),
        ([{"op": "replace", "value": "x"}], "[0]"),
        ([{"op": "replace", "path": "name", "value": "x"}], "[0]"),
        ([{"op": "replace", "path": "/nope", "value": "x"}], "[0]"),
        ([{"op": "remove", "path": "/tags/7"}], "[0]"),
        ([{"op": "add", "path": "/name"}], "[0]"),
        ([{"op": "replace", "path": "/_id", "value": "mine"}], "[0].path"),
        ([{"op": "add", "path": "/_status", "value": {}}], "[0].path"),
        ([{"op": "copy", "from": "/_links", "path": "/name"}], "[0].from"),
        ({"patch": [{"op": "replace", "path": "/_access", "value": {}}]}, "patch[0].path"),
        ({"patch": [{"op": "bogus", "path": "/name"}]}, "patch[0]"),
        ([{"op": "test", "path": "/name", "value": "audit"}] * 101, "body"),
    ],
)
def test_invalid_patch_is_400(
    app_client: TestClient,
    admin_headers: dict[str, str],
    sub: dict[str, Any],
    body: Any,
    attribute: str,
) -> None:
    """Not a list, a bad op, a bad pointer, a missing path or a read-only field answer 400."""
    response = _patch(app_client, admin_headers, sub["_id"], body)
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "invalid_request"
    assert [e["attribute"] for e in response.json()["errors"]] == [attribute]


@pytest.mark.parametrize(
    ("patch", "attribute"),
    [
        ([{"op": "remove", "path": "/name"}], "name"),
        ([{"op": "replace", "path": "/name", "value": 3}], "name"),
        ([{"op": "replace", "path": "/on", "value": "false"}], "on"),
        ([{"op": "add", "path": "/kind", "value": "slack"}], "kind"),
        ([{"op": "replace", "path": "/tags", "value": "ops"}], "tags"),
        ([{"op": "replace", "path": "/config/url", "value": "file:///etc/passwd"}], "config.url"),
        ([{"op": "remove", "path": "/config/url"}], "config.url"),
        ([{"op": "add", "path": "/config/channel", "value": "#x"}], "config.channel"),
        ([{"op": "add", "path": "/config/headers/Host", "value": "evil"}], "config.headers.Host"),
        (
            [{"op": "replace", "path": "/statements/0/resources/0", "value": "proj/a:bogus/*"}],
            "statements[0].resources[0]",
        ),
        ([{"op": "remove", "path": "/statements/0/actions"}], "statements[0].actions"),
        ([{"op": "replace", "path": "", "value": {"name": "root"}}], "config"),
    ],
)
def test_patch_result_that_fails_validation_is_400(
    app_client: TestClient,
    admin_headers: dict[str, str],
    redis_client: Redis,
    sub: dict[str, Any],
    patch: list[dict[str, Any]],
    attribute: str,
) -> None:
    """A patch whose result is not a valid subscription answers 400 and stores nothing."""
    before = stored_subscription(redis_client, sub["_id"])
    response = _patch(app_client, admin_headers, sub["_id"], patch)
    assert response.status_code == 400, response.text
    assert attribute in [e["attribute"] for e in response.json()["errors"]]
    assert stored_subscription(redis_client, sub["_id"]) == before


def test_second_operation_invalid_leaves_document_unchanged(
    app_client: TestClient, admin_headers: dict[str, str], redis_client: Redis, sub: dict[str, Any]
) -> None:
    """When the second operation is invalid, the valid first one is not applied either."""
    # given
    before = stored_subscription(redis_client, sub["_id"])
    version = subscriptions.subscriptions_version(redis_client)
    # when
    response = _patch(
        app_client,
        admin_headers,
        sub["_id"],
        [
            {"op": "replace", "path": "/name", "value": "half"},
            {"op": "replace", "path": "/does/not/exist", "value": 1},
        ],
    )
    # then
    assert response.status_code == 400
    assert stored_subscription(redis_client, sub["_id"]) == before
    assert app_client.get(f"{BASE}/{sub['_id']}", headers=admin_headers).json()["name"] == "audit"
    assert subscriptions.subscriptions_version(redis_client) == version


def test_masked_values_written_back_keep_stored_ones(
    app_client: TestClient, admin_headers: dict[str, str], redis_client: Redis, sub: dict[str, Any]
) -> None:
    """Replacing config with the masked config as read keeps the stored secret and header."""
    # given
    shown = app_client.get(f"{BASE}/{sub['_id']}", headers=admin_headers).json()["config"]
    assert "*" in shown["secret"] and "*" in shown["headers"]["X-Api-Key"]
    edited = {**shown, "url": "https://hooks.example.com/b"}
    # when
    response = _patch(
        app_client,
        admin_headers,
        sub["_id"],
        [{"op": "replace", "path": "/config", "value": edited}],
    )
    # then
    assert response.status_code == 200, response.text
    stored = stored_subscription(redis_client, sub["_id"])
    assert stored.config["url"] == "https://hooks.example.com/b"
    assert stored.config["secret"] == SECRET
    assert stored.config["headers"] == {"X-Api-Key": "key-0123456789", "X-Team": "ops"}
    assert stored.previous_secret is None and stored.previous_secret_until is None


def test_new_secret_keeps_previous_one_for_a_day(
    app_client: TestClient, admin_headers: dict[str, str], redis_client: Redis, sub: dict[str, Any]
) -> None:
    """A really new secret is stored; the old one stays as previous_secret for 24 hours."""
    # when
    start = clock.now_ms()
    response = _patch(
        app_client,
        admin_headers,
        sub["_id"],
        [{"op": "replace", "path": "/config/secret", "value": NEW_SECRET}],
    )
    end = clock.now_ms()
    # then
    assert response.status_code == 200
    assert response.json()["config"]["secret"] == MASK
    stored = stored_subscription(redis_client, sub["_id"])
    assert stored.config["secret"] == NEW_SECRET
    assert stored.previous_secret == SECRET
    assert stored.previous_secret_until is not None
    assert start + SECRET_OVERLAP_MS <= stored.previous_secret_until <= end + SECRET_OVERLAP_MS


def test_removed_secret_is_regenerated_and_shown_once(
    app_client: TestClient, admin_headers: dict[str, str], redis_client: Redis, sub: dict[str, Any]
) -> None:
    """Removing the secret has the relay generate a new one, shown in full in that answer only."""
    response = _patch(
        app_client, admin_headers, sub["_id"], [{"op": "remove", "path": "/config/secret"}]
    )
    assert response.status_code == 200
    stored = stored_subscription(redis_client, sub["_id"])
    assert response.json()["config"]["secret"] == stored.config["secret"] != SECRET
    assert stored.previous_secret == SECRET
    again = app_client.get(f"{BASE}/{sub['_id']}", headers=admin_headers).json()
    assert "*" in again["config"]["secret"]


def test_changed_url_passes_the_destination_guard(
    settings: Settings, redis_client: Redis, admin_headers: dict[str, str], sub: dict[str, Any]
) -> None:
    """With private destinations refused, patching the URL to a loopback address is a 400."""
    guarded = settings.model_copy(update={"allow_private_destinations": False})
    with TestClient(create_app(guarded, redis=redis_client)) as client:
        response = _patch(
            client,
            admin_headers,
            sub["_id"],
            [
                {"op": "replace", "path": "/config/url", "value": "http://[::1]/x"},
                {"op": "replace", "path": "/config/headers", "value": {}},
            ],
        )
    assert response.status_code == 400
    assert [e["attribute"] for e in response.json()["errors"]] == ["config.url"]
    assert (
        stored_subscription(redis_client, sub["_id"]).config["url"] == "https://hooks.example.com/a"
    )


def test_turning_back_on_clears_the_turned_off_reason(
    app_client: TestClient, admin_headers: dict[str, str], redis_client: Redis, sub: dict[str, Any]
) -> None:
    """Patching on=true after the relay turned it off clears the reason and the failing run."""
    # given
    subscription_status.record_failure(
        redis_client, sub_id=sub["_id"], at_ms=1, status_code=500, response_body="x"
    )
    subscriptions.turn_off(redis_client, sub_id=sub["_id"], reason="failing for 5 days")
    # when
    response = _patch(
        app_client, admin_headers, sub["_id"], [{"op": "replace", "path": "/on", "value": True}]
    )
    # then
    status = response.json()["_status"]
    assert response.json()["on"] is True
    assert "disabledReason" not in status and "failingSince" not in status
    assert status["errorCount"] == 1


def test_empty_patch_changes_nothing(
    app_client: TestClient, admin_headers: dict[str, str], redis_client: Redis, sub: dict[str, Any]
) -> None:
    """An empty patch answers 200 with the subscription and leaves the version alone."""
    version = subscriptions.subscriptions_version(redis_client)
    response = _patch(app_client, admin_headers, sub["_id"], [])
    assert response.status_code == 200 and response.json()["name"] == "audit"
    assert subscriptions.subscriptions_version(redis_client) == version


def test_concurrent_patches_lose_nothing(
    live_api: str, admin_headers: dict[str, str], redis_client: Redis, sub: dict[str, Any]
) -> None:
    """Two threads appending to different fields 25 times each: every change is kept."""
    # given
    rounds = 25
    failures: list[str] = []

    def append(path: str, value_of: Any) -> None:
        with httpx.Client(base_url=live_api, headers=admin_headers, timeout=30) as http:
            for n in range(rounds):
                patch = [{"op": "add", "path": path, "value": value_of(n)}]
                response = http.patch(f"{BASE}/{sub['_id']}", json=patch)
                if response.status_code != 200:
                    failures.append(response.text)

    tags = threading.Thread(target=append, args=("/tags/-", lambda n: f"t{n}"))
    statements = threading.Thread(
        target=append,
        args=(
            "/statements/-",
            lambda n: {"effect": "allow", "resources": [f"proj/p{n}"], "actions": ["*"]},
        ),
    )
    version = subscriptions.subscriptions_version(redis_client)
    # when
    tags.start()
    statements.start()
    tags.join()
    statements.join()
    # then
    assert failures == []
    stored = stored_subscription(redis_client, sub["_id"])
    assert stored.tags == ["ops", *(f"t{n}" for n in range(rounds))]
    assert [s["resources"][0] for s in stored.statements[1:]] == [
        f"proj/p{n}" for n in range(rounds)
    ]
    assert subscriptions.subscriptions_version(redis_client) == version + 2 * rounds
