"""A subscription's `delivery` object: create, read, JSON Patch, validation, manifest defaults."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from relay.integrations.manifest import ManifestError, load_manifest
from relay.store import subscriptions
from relay.store.client import Redis
from relay.store.subscriptions import SubscriptionRecord

WEBHOOK = "/api/v2/integrations/webhook"
SLACK = "/api/v2/integrations/slack"
SLACK_URL = "https://hooks.slack.com/services/T0AAAA1111/B0BBBB2222/XXXXXXXXXXXXXXXXXXXXXXXX"
DEFAULTS = {"ordering": "none", "maxPerSecond": None, "maxInFlight": None}


def _body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "flags in production",
        "config": {"url": "https://hooks.example.com/audit"},
        "statements": [{"effect": "allow", "resources": ["proj/*:env/*:flag/*"], "actions": ["*"]}],
    }
    body.update(overrides)
    return body


def _created(response: Any) -> dict[str, Any]:
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def _stored(client: Redis, sub_id: str) -> SubscriptionRecord:
    record = subscriptions.get_subscription(client, sub_id=sub_id)
    assert record is not None
    return record


def _attributes(response: Any) -> list[str]:
    body = response.json()
    assert response.status_code == 400, body
    assert body["code"] == "invalid_request"
    return [error["attribute"] for error in body["errors"]]


def test_a_subscription_created_without_delivery_shows_the_defaults(
    app_client: TestClient, admin_headers: dict[str, str], redis_client: Redis
) -> None:
    """Without `delivery` the answer shows all three defaults and nothing is stored."""
    created = _created(app_client.post(WEBHOOK, json=_body(), headers=admin_headers))
    assert created["delivery"] == DEFAULTS
    record = _stored(redis_client, created["_id"])
    assert record.delivery == {}
    assert record.max_per_second is None and record.max_in_flight is None


def test_a_given_delivery_is_stored_and_shown_in_get_and_list(
    app_client: TestClient, admin_headers: dict[str, str], redis_client: Redis
) -> None:
    """The fields given at create are in the store, the create answer, GET and the list."""
    # given
    delivery = {"ordering": "flag", "maxPerSecond": 2.5, "maxInFlight": 4}
    # when
    created = _created(
        app_client.post(WEBHOOK, json=_body(delivery=delivery), headers=admin_headers)
    )
    fetched = app_client.get(f"{WEBHOOK}/{created['_id']}", headers=admin_headers).json()
    [listed] = app_client.get(WEBHOOK, headers=admin_headers).json()["items"]
    # then
    assert created["delivery"] == fetched["delivery"] == listed["delivery"] == delivery
    record = _stored(redis_client, created["_id"])
    assert record.delivery == delivery
    assert record.max_per_second == 2.5 and record.max_in_flight == 4


def test_fields_left_out_of_delivery_show_their_defaults(
    app_client: TestClient, admin_headers: dict[str, str], redis_client: Redis
) -> None:
    """Only the fields set to something other than the default are stored; all are shown."""
    delivery = {"ordering": "none", "maxInFlight": 1}
    created = _created(
        app_client.post(WEBHOOK, json=_body(delivery=delivery), headers=admin_headers)
    )
    assert created["delivery"] == {**DEFAULTS, "maxInFlight": 1}
    assert _stored(redis_client, created["_id"]).delivery == {"maxInFlight": 1}


def test_json_patch_changes_ordering_and_adds_a_rate(
    app_client: TestClient, admin_headers: dict[str, str], redis_client: Redis
) -> None:
    """`replace /delivery/ordering` and `add /delivery/maxPerSecond` change the stored record."""
    # given
    created = _created(app_client.post(WEBHOOK, json=_body(), headers=admin_headers))
    patch = [
        {"op": "replace", "path": "/delivery/ordering", "value": "subscription"},
        {"op": "add", "path": "/delivery/maxPerSecond", "value": 10},
    ]
    # when
    response = app_client.patch(f"{WEBHOOK}/{created['_id']}", json=patch, headers=admin_headers)
    # then
    assert response.status_code == 200, response.text
    assert response.json()["delivery"] == {
        **DEFAULTS,
        "ordering": "subscription",
        "maxPerSecond": 10,
    }
    record = _stored(redis_client, created["_id"])
    assert record.delivery == {"ordering": "subscription", "maxPerSecond": 10}
    assert record.max_per_second == 10.0 and record.max_in_flight is None


def test_json_patch_removing_a_limit_clears_it(
    app_client: TestClient, admin_headers: dict[str, str], redis_client: Redis
) -> None:
    """`remove /delivery/maxInFlight` leaves the subscription without that limit."""
    # given
    delivery = {"maxInFlight": 3, "maxPerSecond": 1}
    created = _created(
        app_client.post(WEBHOOK, json=_body(delivery=delivery), headers=admin_headers)
    )
    # when
    response = app_client.patch(
        f"{WEBHOOK}/{created['_id']}",
        json=[{"op": "remove", "path": "/delivery/maxInFlight"}],
        headers=admin_headers,
    )
    # then
    assert response.status_code == 200, response.text
    assert response.json()["delivery"] == {**DEFAULTS, "maxPerSecond": 1}
    assert _stored(redis_client, created["_id"]).max_in_flight is None


INVALID = [
    ("rate as text", {"maxPerSecond": "5"}, "delivery.maxPerSecond"),
    ("rate 0", {"maxPerSecond": 0}, "delivery.maxPerSecond"),
    ("rate negative", {"maxPerSecond": -1}, "delivery.maxPerSecond"),
    ("rate too large", {"maxPerSecond": 1000.5}, "delivery.maxPerSecond"),
    ("rate true", {"maxPerSecond": True}, "delivery.maxPerSecond"),
    ("in flight as text", {"maxInFlight": "2"}, "delivery.maxInFlight"),
    ("in flight 0", {"maxInFlight": 0}, "delivery.maxInFlight"),
    ("in flight negative", {"maxInFlight": -2}, "delivery.maxInFlight"),
    ("in flight too large", {"maxInFlight": 1001}, "delivery.maxInFlight"),
    ("in flight fraction", {"maxInFlight": 1.5}, "delivery.maxInFlight"),
    ("in flight true", {"maxInFlight": True}, "delivery.maxInFlight"),
    ("unknown ordering", {"ordering": "fifo"}, "delivery.ordering"),
    ("ordering null", {"ordering": None}, "delivery.ordering"),
    ("unknown key", {"burst": 5}, "delivery.burst"),
    ("not an object", [1], "delivery"),
]
_IDS = [case[0] for case in INVALID]


@pytest.mark.parametrize(("case", "delivery", "attribute"), INVALID, ids=_IDS)
def test_an_invalid_delivery_at_create_is_a_400_naming_the_field(
    app_client: TestClient,
    admin_headers: dict[str, str],
    redis_client: Redis,
    case: str,
    delivery: Any,
    attribute: str,
) -> None:
    """A wrong type, a bound passed, an unknown ordering or key: 400 on that field, no create."""
    response = app_client.post(WEBHOOK, json=_body(delivery=delivery), headers=admin_headers)
    assert _attributes(response) == [attribute], case
    assert subscriptions.subscription_page(redis_client, offset=0, limit=10)[1] == 0


@pytest.mark.parametrize(("case", "delivery", "attribute"), INVALID, ids=_IDS)
def test_an_invalid_delivery_in_a_patch_is_a_400_naming_the_field(
    app_client: TestClient,
    admin_headers: dict[str, str],
    redis_client: Redis,
    case: str,
    delivery: Any,
    attribute: str,
) -> None:
    """The same values written by JSON Patch: 400 on the same field, the record unchanged."""
    # given
    created = _created(app_client.post(WEBHOOK, json=_body(), headers=admin_headers))
    patch = [{"op": "replace", "path": "/delivery", "value": delivery}]
    # when
    response = app_client.patch(f"{WEBHOOK}/{created['_id']}", json=patch, headers=admin_headers)
    # then
    assert _attributes(response) == [attribute], case
    assert _stored(redis_client, created["_id"]).delivery == {}


def test_a_slack_subscription_takes_one_message_a_second_by_default(
    app_client: TestClient, admin_headers: dict[str, str], redis_client: Redis
) -> None:
    """Slack's manifest default fills maxPerSecond when the client leaves it out."""
    body = {"name": "to #releases", "config": {"url": SLACK_URL}}
    created = _created(
        app_client.post(SLACK, json={**body, "delivery": {"maxInFlight": 2}}, headers=admin_headers)
    )
    assert created["delivery"] == {"ordering": "none", "maxPerSecond": 1, "maxInFlight": 2}
    record = _stored(redis_client, created["_id"])
    assert record.max_per_second == 1.0 and record.max_in_flight == 2


@pytest.mark.parametrize(("given", "expected"), [(5, 5.0), (0.5, 0.5), (None, None)])
def test_an_explicit_rate_on_slack_is_kept(
    app_client: TestClient,
    admin_headers: dict[str, str],
    redis_client: Redis,
    given: float | None,
    expected: float | None,
) -> None:
    """A maxPerSecond the client gives (null: no limit) replaces Slack's default."""
    body = {
        "name": "to #releases",
        "config": {"url": SLACK_URL},
        "delivery": {"maxPerSecond": given},
    }
    created = _created(app_client.post(SLACK, json=body, headers=admin_headers))
    assert created["delivery"]["maxPerSecond"] == expected
    assert _stored(redis_client, created["_id"]).max_per_second == expected


def test_a_patch_does_not_bring_back_the_manifest_default(
    app_client: TestClient, admin_headers: dict[str, str], redis_client: Redis
) -> None:
    """A Slack rate cleared by JSON Patch stays cleared: defaults apply at create only."""
    # given
    body = {"name": "to #releases", "config": {"url": SLACK_URL}}
    created = _created(app_client.post(SLACK, json=body, headers=admin_headers))
    # when
    response = app_client.patch(
        f"{SLACK}/{created['_id']}",
        json=[{"op": "replace", "path": "/delivery/maxPerSecond", "value": None}],
        headers=admin_headers,
    )
    # then
    assert response.status_code == 200, response.text
    assert response.json()["delivery"] == DEFAULTS
    assert _stored(redis_client, created["_id"]).max_per_second is None


def test_the_manifests_api_shows_delivery_defaults(
    app_client: TestClient, admin_headers: dict[str, str]
) -> None:
    """GET integration-manifests/{key} shows `deliveryDefaults`: Slack's rate, none for webhook."""
    base = "/api/v2/integration-manifests"
    slack = app_client.get(f"{base}/slack", headers=admin_headers).json()
    webhook = app_client.get(f"{base}/webhook", headers=admin_headers).json()
    assert slack["deliveryDefaults"] == {"maxPerSecond": 1}
    assert webhook["deliveryDefaults"] == {}


def _manifest(tmp_path: Path, defaults: Any) -> Path:
    folder = tmp_path / "example"
    (folder / "templates").mkdir(parents=True)
    (folder / "templates" / "default.json.hbs").write_text('{"text": "{{{title.plainText}}}"}')
    document = {
        "name": "Example",
        "formVariables": [{"key": "url", "name": "URL", "type": "uri"}],
        "capabilities": {
            "auditLogEventsHook": {
                "endpoint": {"url": "{{{url}}}"},
                "templates": {"default": "templates/default.json.hbs"},
            }
        },
        "deliveryDefaults": defaults,
    }
    (folder / "manifest.json").write_text(json.dumps(document))
    return folder


def test_a_manifest_keeps_only_the_delivery_defaults_it_sets(tmp_path: Path) -> None:
    """`deliveryDefaults` loads as the keys given, with the wire names."""
    loaded = load_manifest(_manifest(tmp_path, {"ordering": "flag", "maxInFlight": 8}))
    assert loaded.delivery_defaults == {"ordering": "flag", "maxInFlight": 8}


BAD_DEFAULTS = [
    ({"maxPerSecond": 0}, "deliveryDefaults.maxPerSecond"),
    ({"maxPerSecond": "1"}, "deliveryDefaults.maxPerSecond"),
    ({"maxInFlight": 1001}, "deliveryDefaults.maxInFlight"),
    ({"maxInFlight": True}, "deliveryDefaults.maxInFlight"),
    ({"ordering": "fifo"}, "deliveryDefaults.ordering"),
    ({"burst": 5}, "deliveryDefaults.burst"),
    ([], "deliveryDefaults"),
]


@pytest.mark.parametrize(("defaults", "field"), BAD_DEFAULTS, ids=[f for _, f in BAD_DEFAULTS])
def test_a_bad_delivery_default_stops_the_load_naming_the_key(
    tmp_path: Path, defaults: Any, field: str
) -> None:
    """A manifest whose deliveryDefaults a subscription could not store is refused at load."""
    with pytest.raises(ManifestError) as caught:
        load_manifest(_manifest(tmp_path, defaults))
    assert caught.value.field == field


def test_the_upper_bounds_are_accepted(
    app_client: TestClient, admin_headers: dict[str, str]
) -> None:
    """maxPerSecond 1000 and maxInFlight 1000 are the largest values accepted."""
    delivery = {"ordering": "flag", "maxPerSecond": 1000, "maxInFlight": 1000}
    created = _created(
        app_client.post(WEBHOOK, json=_body(delivery=delivery), headers=admin_headers)
    )
    assert created["delivery"] == delivery


def test_a_stored_value_out_of_bounds_shows_as_its_default(
    app_client: TestClient, admin_headers: dict[str, str], redis_client: Redis
) -> None:
    """A stored delivery field the API would refuse does not break reading the subscription."""
    # given: written past the API, as an older relay or an operator might have
    record = subscriptions.create_subscription(
        redis_client,
        integration_key="webhook",
        name="by hand",
        config={"url": "https://hooks.example.com/audit", "secret": "s", "format": "unleash"},
        statements=[],
        on=True,
        tags=[],
        delivery={"ordering": "flag", "maxInFlight": 0, "burst": 3},
    )
    # when
    response = app_client.get(f"{WEBHOOK}/{record.id}", headers=admin_headers)
    # then
    assert response.status_code == 200, response.text
    assert response.json()["delivery"] == {**DEFAULTS, "ordering": "flag"}
