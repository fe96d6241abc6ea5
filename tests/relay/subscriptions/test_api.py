"""Create, list, get and delete audit-log subscriptions: validation, masking, roles."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from fastapi.testclient import TestClient

from relay.api.app import create_app
from relay.settings import Settings
from relay.store import subscription_status, subscriptions, tokens
from relay.store.client import Redis
from relay.store.tokens import Role
from relay.subscriptions.urls import MASK

BASE = "/api/v2/integrations/webhook"
SECRET = "whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVowMTIzNDU="  # 32 bytes


def _body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "flags in production",
        "config": {"url": "https://hooks.example.com/audit"},
        "statements": [
            {"effect": "allow", "resources": ["proj/*:env/production:flag/*"], "actions": ["*"]}
        ],
        "tags": ["ops"],
    }
    body.update(overrides)
    return body


def _create(app_client: TestClient, headers: dict[str, str], **overrides: Any) -> dict[str, Any]:
    response = app_client.post(BASE, json=_body(**overrides), headers=headers)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def _errors(response: Any) -> list[tuple[str, str]]:
    body = response.json()
    assert response.status_code == 400, body
    assert body["code"] == "invalid_request"
    return [(e["attribute"], e["reason"]) for e in body["errors"]]


def _attributes(response: Any) -> list[str]:
    return [attribute for attribute, _ in _errors(response)]


def test_create_stores_defaults_and_answers_201(
    app_client: TestClient, admin_headers: dict[str, str], redis_client: Redis
) -> None:
    """A create answers 201 with Location, fills defaults and stores the validated document."""
    # when
    response = app_client.post(BASE, json=_body(), headers=admin_headers)
    # then
    assert response.status_code == 201
    created = response.json()
    assert response.headers["location"] == f"{BASE}/{created['_id']}"
    assert created["on"] is True
    assert created["config"]["format"] == "unleash" and created["config"]["headers"] == {}
    stored = subscriptions.get_subscription(redis_client, sub_id=created["_id"])
    assert stored is not None
    assert stored.config["secret"] == created["config"]["secret"]
    assert stored.statements == _body()["statements"]


def test_generated_secret_is_standard_webhooks_form(
    app_client: TestClient, admin_headers: dict[str, str]
) -> None:
    """A generated secret is whsec_ + base64 of 32 random bytes, different each time."""
    first = _create(app_client, admin_headers)["config"]["secret"]
    second = _create(app_client, admin_headers)["config"]["secret"]
    assert first != second
    for secret in (first, second):
        assert secret.startswith("whsec_")
        assert len(base64.b64decode(secret.removeprefix("whsec_"), validate=True)) == 32


def test_given_secret_is_masked_in_every_answer(
    app_client: TestClient, admin_headers: dict[str, str]
) -> None:
    """A secret given by the admin is masked (nothing of it kept) in create, get and list."""
    created = _create(
        app_client, admin_headers, config={"url": "https://h.example.com", "secret": SECRET}
    )
    masked = MASK
    fetched = app_client.get(f"{BASE}/{created['_id']}", headers=admin_headers).json()
    listed = app_client.get(BASE, headers=admin_headers).json()["items"][0]
    assert created["config"]["secret"] == fetched["config"]["secret"] == masked
    assert listed["config"]["secret"] == masked


def test_every_header_value_is_masked(
    app_client: TestClient, admin_headers: dict[str, str]
) -> None:
    """Every static header value is a credential: masked in answers, whatever its name."""
    headers = {"Authorization": "Bearer 0123456789abcdef", "X-Team": "platform"}
    created = _create(
        app_client, admin_headers, config={"url": "https://h.example.com", "headers": headers}
    )
    shown = app_client.get(f"{BASE}/{created['_id']}", headers=admin_headers).json()
    assert shown["config"]["headers"] == {"Authorization": MASK, "X-Team": MASK}


def test_list_is_scoped_to_integration_and_parses(
    app_client: TestClient, admin_headers: dict[str, str]
) -> None:
    """The list answers {_links, items, key} with every subscription, oldest first."""
    first = _create(app_client, admin_headers, name="a")
    second = _create(app_client, admin_headers, name="b")
    listed = app_client.get(BASE, headers=admin_headers).json()
    assert listed["key"] == "webhook"
    assert listed["_links"]["self"] == {"href": BASE, "type": "application/json"}
    assert [i["_id"] for i in listed["items"]] == [first["_id"], second["_id"]]


@pytest.mark.parametrize(
    ("body", "attribute"),
    [
        ({"config": {"url": "https://h.example.com"}}, "name"),
        (_body(name=""), "name"),
        (_body(name=5), "name"),
        (_body(on="yes"), "on"),
        (_body(tags="ops"), "tags"),
        (_body(tags=[1]), "tags[0]"),
        (_body(kind="webhook"), "kind"),
        (_body(_id="abc"), "_id"),
        (_body(config="https://h.example.com"), "config"),
        ({"name": "no config"}, "config"),
        (_body(statements={"effect": "allow"}), "statements"),
        (
            _body(statements=[{"effect": "maybe", "resources": ["proj/*"], "actions": ["*"]}]),
            "statements[0].effect",
        ),
        (
            _body(
                statements=[{"effect": "allow", "resources": ["proj/*"], "actions": ["*"], "x": 1}]
            ),
            "statements[0].x",
        ),
    ],
)
def test_malformed_create_is_400(
    app_client: TestClient, admin_headers: dict[str, str], body: dict[str, Any], attribute: str
) -> None:
    """Missing or mistyped fields and unknown fields answer 400 naming the attribute."""
    response = app_client.post(BASE, json=body, headers=admin_headers)
    assert attribute in _attributes(response)


def test_statement_grammar_errors_name_the_specifier(
    app_client: TestClient, admin_headers: dict[str, str]
) -> None:
    """Statement errors found by the policies package come back with their exact attribute."""
    statements = [
        {"effect": "allow", "resources": ["proj/*"], "actions": ["*"]},
        {"effect": "allow", "resources": ["proj/*", "flag/x;"], "actions": ["*"]},
        {"effect": "deny", "resources": ["proj/*"], "notResources": ["proj/a"], "actions": ["*"]},
    ]
    response = app_client.post(BASE, json=_body(statements=statements), headers=admin_headers)
    attributes = _attributes(response)
    assert "statements[1].resources[1]" in attributes
    assert "statements[2].notResources" in attributes
    assert not any(a.startswith("statements[0]") for a in attributes)


@pytest.mark.parametrize(
    ("config", "attribute"),
    [
        ({}, "config.url"),
        ({"url": "ftp://h.example.com/x"}, "config.url"),
        ({"url": "https://"}, "config.url"),
        ({"url": "not a url"}, "config.url"),
        ({"url": "https://h.example.com:99999/"}, "config.url"),
        ({"url": "https://user:pw@h.example.com/"}, "config.url"),
        ({"url": 42}, "config.url"),
        ({"url": "https://h.example.com", "channel": "#ops"}, "config.channel"),
        ({"url": "https://h.example.com", "format": "slack"}, "config.format"),
        ({"url": "https://h.example.com", "secret": "line\nbreak"}, "config.secret"),
        ({"url": "https://h.example.com", "secret": "whsec_c2hvcnQ="}, "config.secret"),
        ({"url": "https://h.example.com", "secret": "whsec_!!notbase64!!"}, "config.secret"),
        ({"url": "https://h.example.com", "headers": ["X-A: b"]}, "config.headers"),
        ({"url": "https://h.example.com", "headers": {"Host": "evil"}}, "config.headers.Host"),
        (
            {"url": "https://h.example.com", "headers": {"content-length": "1"}},
            "config.headers.content-length",
        ),
        (
            {"url": "https://h.example.com", "headers": {"Connection": "close"}},
            "config.headers.Connection",
        ),
        (
            {"url": "https://h.example.com", "headers": {"X-LD-Signature": "ab"}},
            "config.headers.X-LD-Signature",
        ),
        (
            {"url": "https://h.example.com", "headers": {"webhook-signature": "v1,x"}},
            "config.headers.webhook-signature",
        ),
        ({"url": "https://h.example.com", "headers": {"X-A": "b\r\nX-B: c"}}, "config.headers.X-A"),
        ({"url": "https://h.example.com", "headers": {"X A": "b"}}, "config.headers.X A"),
        ({"url": "https://h.example.com", "headers": {"X-A": 1}}, "config.headers.X-A"),
    ],
)
def test_bad_config_is_400(
    app_client: TestClient, admin_headers: dict[str, str], config: dict[str, Any], attribute: str
) -> None:
    """Bad URLs, secrets, formats, headers and unknown config keys answer 400 on that attribute."""
    response = app_client.post(BASE, json=_body(config=config), headers=admin_headers)
    assert attribute in _attributes(response)


def test_every_problem_is_reported_at_once(
    app_client: TestClient, admin_headers: dict[str, str], redis_client: Redis
) -> None:
    """Config and statement problems come back together, and nothing is stored."""
    body = _body(
        config={"url": "gopher://x", "format": "xml"},
        statements=[{"effect": "allow", "resources": ["nope/*"], "actions": ["*"]}],
    )
    response = app_client.post(BASE, json=body, headers=admin_headers)
    assert set(_attributes(response)) == {
        "config.url",
        "config.format",
        "statements[0].resources[0]",
    }
    assert subscriptions.list_subscriptions(redis_client) == []
    assert subscriptions.subscriptions_version(redis_client) == 0


def test_malformed_json_is_400(app_client: TestClient, admin_headers: dict[str, str]) -> None:
    """A body that is not JSON answers 400 invalid_request."""
    response = app_client.post(
        BASE, content=b"{nope", headers={**admin_headers, "Content-Type": "application/json"}
    )
    assert response.status_code == 400 and response.json()["code"] == "invalid_request"


def test_private_destination_is_refused_when_guarded(
    settings: Settings, redis_client: Redis, admin_headers: dict[str, str]
) -> None:
    """With private destinations refused, a loopback or private URL answers 400 on config.url."""
    # given
    guarded = settings.model_copy(update={"allow_private_destinations": False})
    with TestClient(create_app(guarded, redis=redis_client)) as client:
        # when
        loopback = client.post(
            BASE, json=_body(config={"url": "http://127.0.0.1:8080/h"}), headers=admin_headers
        )
        private = client.post(
            BASE, json=_body(config={"url": "https://10.1.2.3/h"}), headers=admin_headers
        )
    # then
    for response in (loopback, private):
        [(attribute, reason)] = _errors(response)
        assert attribute == "config.url" and reason
    assert "loopback" in _errors(loopback)[0][1]
    assert subscriptions.list_subscriptions(redis_client) == []


def test_listed_cidr_lets_a_private_destination_through(
    settings: Settings, redis_client: Redis, admin_headers: dict[str, str]
) -> None:
    """An address in allowed_destination_cidrs is accepted even when private ones are refused."""
    guarded = settings.model_copy(
        update={"allow_private_destinations": False, "allowed_destination_cidrs": ["10.1.0.0/16"]}
    )
    with TestClient(create_app(guarded, redis=redis_client)) as client:
        response = client.post(
            BASE, json=_body(config={"url": "https://10.1.2.3/h"}), headers=admin_headers
        )
    assert response.status_code == 201


def test_unknown_integration_or_id_is_404(
    app_client: TestClient, admin_headers: dict[str, str]
) -> None:
    """Every operation answers 404 not_found for an unknown integration key or id."""
    created = _create(app_client, admin_headers)
    patch = [{"op": "replace", "path": "/on", "value": False}]
    responses = [
        app_client.post("/api/v2/integrations/nope", json=_body(), headers=admin_headers),
        app_client.get("/api/v2/integrations/nope", headers=admin_headers),
        app_client.get(f"/api/v2/integrations/nope/{created['_id']}", headers=admin_headers),
        app_client.patch(
            f"/api/v2/integrations/nope/{created['_id']}", json=patch, headers=admin_headers
        ),
        app_client.delete(f"/api/v2/integrations/nope/{created['_id']}", headers=admin_headers),
        app_client.get(f"{BASE}/missing", headers=admin_headers),
        app_client.patch(f"{BASE}/missing", json=patch, headers=admin_headers),
        app_client.delete(f"{BASE}/missing", headers=admin_headers),
    ]
    for response in responses:
        assert response.status_code == 404, response.text
        assert response.json()["code"] == "not_found"
    assert app_client.get(f"{BASE}/{created['_id']}", headers=admin_headers).json()["on"] is True


def test_delete_removes_subscription_and_status(
    app_client: TestClient, admin_headers: dict[str, str], redis_client: Redis
) -> None:
    """DELETE answers 204, removes the document and its status keys, and bumps the version."""
    # given
    created = _create(app_client, admin_headers)
    subscription_status.record_failure(
        redis_client, sub_id=created["_id"], at_ms=1, status_code=500, response_body="boom"
    )
    version = subscriptions.subscriptions_version(redis_client)
    # when
    response = app_client.delete(f"{BASE}/{created['_id']}", headers=admin_headers)
    # then
    assert response.status_code == 204 and response.content == b""
    assert app_client.get(f"{BASE}/{created['_id']}", headers=admin_headers).status_code == 404
    assert redis_client.keys(f"relay:sub:{created['_id']}*") == []
    assert subscriptions.subscriptions_version(redis_client) == version + 1


def test_turned_off_reason_is_shown_in_status(
    app_client: TestClient, admin_headers: dict[str, str], redis_client: Redis
) -> None:
    """A subscription the relay turned off shows on=false and the reason in _status."""
    created = _create(app_client, admin_headers)
    subscriptions.turn_off(redis_client, sub_id=created["_id"], reason="receiver answered 410 Gone")
    shown = app_client.get(f"{BASE}/{created['_id']}", headers=admin_headers).json()
    assert shown["on"] is False
    assert shown["_status"]["disabledReason"] == "receiver answered 410 Gone"


def test_version_bumps_on_each_change(
    app_client: TestClient, admin_headers: dict[str, str], redis_client: Redis
) -> None:
    """Create, patch and delete each bump the subscriptions version once; reads do not."""
    versions = [subscriptions.subscriptions_version(redis_client)]
    created = _create(app_client, admin_headers)
    versions.append(subscriptions.subscriptions_version(redis_client))
    app_client.get(BASE, headers=admin_headers)
    app_client.patch(
        f"{BASE}/{created['_id']}",
        json=[{"op": "replace", "path": "/name", "value": "n"}],
        headers=admin_headers,
    )
    versions.append(subscriptions.subscriptions_version(redis_client))
    app_client.delete(f"{BASE}/{created['_id']}", headers=admin_headers)
    versions.append(subscriptions.subscriptions_version(redis_client))
    assert versions == [0, 1, 2, 3]


def _token(redis_client: Redis, role: Role) -> dict[str, str]:
    _, secret = tokens.create_token(redis_client, name=role.value, role=role)
    return {"Authorization": secret}


def _operations(app_client: TestClient, headers: dict[str, str], sub_id: str) -> dict[str, int]:
    patch = [{"op": "replace", "path": "/name", "value": "renamed"}]
    return {
        "list": app_client.get(BASE, headers=headers).status_code,
        "get": app_client.get(f"{BASE}/{sub_id}", headers=headers).status_code,
        "create": app_client.post(BASE, json=_body(), headers=headers).status_code,
        "patch": app_client.patch(f"{BASE}/{sub_id}", json=patch, headers=headers).status_code,
        "delete": app_client.delete(f"{BASE}/{sub_id}", headers=headers).status_code,
    }


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        (Role.INGEST, {"list": 403, "get": 403, "create": 403, "patch": 403, "delete": 403}),
        (Role.READER, {"list": 200, "get": 200, "create": 403, "patch": 403, "delete": 403}),
        (Role.WRITER, {"list": 200, "get": 200, "create": 201, "patch": 200, "delete": 204}),
    ],
)
def test_roles(
    app_client: TestClient,
    admin_headers: dict[str, str],
    redis_client: Redis,
    role: Role,
    expected: dict[str, int],
) -> None:
    """Readers may read, writers may do everything, ingest tokens nothing."""
    created = _create(app_client, admin_headers)
    assert _operations(app_client, _token(redis_client, role), created["_id"]) == expected


def test_forbidden_change_changes_nothing(
    app_client: TestClient, admin_headers: dict[str, str], redis_client: Redis
) -> None:
    """A reader's refused create, patch and delete leave the store and version untouched."""
    created = _create(app_client, admin_headers)
    version = subscriptions.subscriptions_version(redis_client)
    _operations(app_client, _token(redis_client, Role.READER), created["_id"])
    assert [r.id for r in subscriptions.list_subscriptions(redis_client)] == [created["_id"]]
    assert (
        app_client.get(f"{BASE}/{created['_id']}", headers=admin_headers).json()["name"]
        == created["name"]
    )
    assert subscriptions.subscriptions_version(redis_client) == version


def test_without_token_is_401(app_client: TestClient) -> None:
    """No token answers 401 on every operation."""
    assert app_client.get(BASE).status_code == 401
    assert app_client.post(BASE, json=_body()).status_code == 401


def test_access_tells_reader_what_is_denied(
    app_client: TestClient, admin_headers: dict[str, str], redis_client: Redis
) -> None:
    """_access lists every integration action as denied for a reader, allowed for a writer."""
    created = _create(app_client, admin_headers)
    as_reader = app_client.get(
        f"{BASE}/{created['_id']}", headers=_token(redis_client, Role.READER)
    )
    as_writer = app_client.get(
        f"{BASE}/{created['_id']}", headers=_token(redis_client, Role.WRITER)
    )
    reader_access, writer_access = as_reader.json()["_access"], as_writer.json()["_access"]
    assert reader_access["allowed"] == [] and writer_access["denied"] == []
    denied = {a["action"] for a in reader_access["denied"]}
    assert denied == {a["action"] for a in writer_access["allowed"]}
    assert "updateConfiguration" in denied
    assert reader_access["denied"][0]["reason"]["effect"] == "deny"
    assert reader_access["denied"][0]["reason"]["role_name"] == "reader"
