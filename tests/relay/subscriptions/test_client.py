"""The subscriptions API driven by LaunchDarkly's official Python client over real HTTP."""

from __future__ import annotations

import json

import pytest
from launchdarkly_api import ApiClient, Configuration, IntegrationAuditLogSubscriptionsApi
from launchdarkly_api.exceptions import ApiException
from launchdarkly_api.models.integration import Integration
from launchdarkly_api.models.integrations import Integrations
from launchdarkly_api.models.patch_operation import PatchOperation
from launchdarkly_api.models.statement_post import StatementPost
from launchdarkly_api.models.subscription_post import SubscriptionPost

from relay.store import subscription_status, tokens
from relay.store.client import Redis
from relay.store.tokens import Role


def _post(**overrides: object) -> SubscriptionPost:
    fields: dict[str, object] = {
        "name": "Audit to ops",
        "config": {"url": "https://hooks.example.com/audit", "format": "launchdarkly"},
        "statements": [
            StatementPost(effect="allow", resources=["proj/*:env/*:flag/*;ops"], actions=["*"])
        ],
        "on": True,
        "tags": ["ops"],
    }
    fields.update(overrides)
    return SubscriptionPost.model_validate(fields)


def test_create_returns_parsed_integration(ld: IntegrationAuditLogSubscriptionsApi) -> None:
    """create_subscription returns an Integration with links, status, access and the new secret."""
    created = ld.create_subscription("webhook", _post())
    assert isinstance(created, Integration)
    assert created.id and created.kind == "webhook" and created.name == "Audit to ops"
    assert created.links is not None
    assert created.links["self"].href == f"/api/v2/integrations/webhook/{created.id}"
    assert created.links["parent"].href == "/api/v2/integrations/webhook"
    assert created.on is True and created.tags == ["ops"]
    assert created.statements is not None
    assert created.statements[0].resources == ["proj/*:env/*:flag/*;ops"]
    assert created.statements[0].effect == "allow"
    assert created.config is not None
    assert created.config["secret"].startswith("whsec_")  # generated: shown once, in full
    assert created.config["format"] == "launchdarkly"
    assert created.status is not None and created.status.success_count == 0
    assert created.access is not None and created.access.denied == []
    assert {a.action for a in created.access.allowed} >= {"updateOn", "deleteIntegration"}


def test_list_and_get_parse(ld: IntegrationAuditLogSubscriptionsApi) -> None:
    """get_subscriptions and get_subscription_by_id return parsed models with masked secrets."""
    # given
    first = ld.create_subscription("webhook", _post(name="first"))
    second = ld.create_subscription("webhook", _post(name="second", on=False))
    # when
    listed = ld.get_subscriptions("webhook")
    fetched = ld.get_subscription_by_id("webhook", second.id)
    # then
    assert isinstance(listed, Integrations)
    assert listed.key == "webhook"
    assert listed.links is not None
    assert listed.links["self"].href == "/api/v2/integrations/webhook"
    assert [i.id for i in listed.items or []] == [first.id, second.id]
    assert isinstance(fetched, Integration)
    assert fetched.name == "second" and fetched.on is False
    assert fetched.config is not None and "*" in fetched.config["secret"]
    assert second.config is not None
    assert fetched.config["secret"] != second.config["secret"]


def test_status_errors_parse(ld: IntegrationAuditLogSubscriptionsApi, redis_client: Redis) -> None:
    """Recorded delivery failures come back as the client's IntegrationStatusRep items."""
    # given
    created = ld.create_subscription("webhook", _post())
    subscription_status.record_failure(
        redis_client, sub_id=created.id, at_ms=1_700_000_000_000, status_code=503, response_body="x"
    )
    subscription_status.record_success(redis_client, sub_id=created.id, at_ms=1_700_000_001_000)
    # when
    status = ld.get_subscription_by_id("webhook", created.id).status
    # then
    assert status is not None
    assert status.error_count == 1 and status.success_count == 1
    assert status.last_error == 1_700_000_000_000 and status.last_success == 1_700_000_001_000
    assert status.errors is not None
    assert status.errors[0].status_code == 503 and status.errors[0].response_body == "x"


def test_a_readers_status_errors_parse_without_text(
    ld: IntegrationAuditLogSubscriptionsApi, live_api: str, redis_client: Redis
) -> None:
    """A reader's `_status.errors[]` (no responseBody) and origin-only URL parse in the client."""
    # given
    created = ld.create_subscription("webhook", _post())
    subscription_status.record_failure(
        redis_client, sub_id=created.id, at_ms=1_700_000_000_000, status_code=503, response_body="x"
    )
    _, secret = tokens.create_token(redis_client, name="reader", role=Role.READER)
    configuration = Configuration(host=live_api, api_key={"ApiKey": secret})
    # when
    with ApiClient(configuration) as api_client:
        shown = IntegrationAuditLogSubscriptionsApi(api_client).get_subscription_by_id(
            "webhook", created.id
        )
    # then
    assert shown.status is not None and shown.status.errors is not None
    assert (
        shown.status.errors[0].status_code == 503 and shown.status.errors[0].response_body is None
    )
    assert shown.config is not None and shown.config["url"] == "https://hooks.example.com/********"


def test_update_with_patch_operations(ld: IntegrationAuditLogSubscriptionsApi) -> None:
    """update_subscription applies a JSON Patch and returns the updated Integration."""
    created = ld.create_subscription("webhook", _post())
    updated = ld.update_subscription(
        "webhook",
        created.id,
        [
            PatchOperation(op="test", path="/name", value="Audit to ops"),
            PatchOperation(op="replace", path="/on", value=False),
            PatchOperation(op="add", path="/tags/-", value="beta"),
        ],
    )
    assert isinstance(updated, Integration)
    assert updated.on is False and updated.tags == ["ops", "beta"]
    assert ld.get_subscription_by_id("webhook", created.id).on is False


def test_delete_then_get_is_404(ld: IntegrationAuditLogSubscriptionsApi) -> None:
    """delete_subscription answers 204 (None); the subscription is then gone."""
    created = ld.create_subscription("webhook", _post())
    assert ld.delete_subscription("webhook", created.id) is None
    with pytest.raises(ApiException) as caught:
        ld.get_subscription_by_id("webhook", created.id)
    assert caught.value.status == 404
    assert ld.get_subscriptions("webhook").items == []


def test_bad_create_raises_400(ld: IntegrationAuditLogSubscriptionsApi) -> None:
    """A create with a bad URL raises ApiException 400 naming config.url."""
    with pytest.raises(ApiException) as caught:
        ld.create_subscription("webhook", _post(config={"url": "ftp://example.com/x"}))
    assert caught.value.status == 400
    body = json.loads(caught.value.body or "{}")
    assert body["code"] == "invalid_request"
    assert [e["attribute"] for e in body["errors"]] == ["config.url"]


def test_unknown_integration_and_id_raise_404(ld: IntegrationAuditLogSubscriptionsApi) -> None:
    """An unknown integration key or id raises ApiException 404 not_found for every operation."""
    created = ld.create_subscription("webhook", _post())
    calls = [
        lambda: ld.create_subscription("nope", _post()),
        lambda: ld.get_subscriptions("nope"),
        lambda: ld.get_subscription_by_id("nope", created.id),
        lambda: ld.get_subscription_by_id("webhook", "0" * 24),
        lambda: ld.update_subscription(
            "webhook", "0" * 24, [PatchOperation(op="remove", path="/tags/0")]
        ),
        lambda: ld.delete_subscription("webhook", "0" * 24),
    ]
    for call in calls:
        with pytest.raises(ApiException) as caught:
            call()
        assert caught.value.status == 404
        assert json.loads(caught.value.body or "{}")["code"] == "not_found"


def test_failed_test_operation_raises_409(ld: IntegrationAuditLogSubscriptionsApi) -> None:
    """A failed test operation raises ApiException 409 optimistic_locking_error; nothing changes."""
    # given
    created = ld.create_subscription("webhook", _post())
    # when
    with pytest.raises(ApiException) as caught:
        ld.update_subscription(
            "webhook",
            created.id,
            [
                PatchOperation(op="test", path="/name", value="someone else's name"),
                PatchOperation(op="replace", path="/on", value=False),
            ],
        )
    # then
    assert caught.value.status == 409
    assert json.loads(caught.value.body or "{}")["code"] == "optimistic_locking_error"
    assert ld.get_subscription_by_id("webhook", created.id).on is True
