"""A datadog subscription made, patched, read and listed with LaunchDarkly's official client
and LaunchDarkly's own datadog config, over real HTTP; the API key never shown."""

from __future__ import annotations

import json
from typing import Any

from launchdarkly_api import IntegrationAuditLogSubscriptionsApi
from launchdarkly_api.models.integration import Integration
from launchdarkly_api.models.patch_operation import PatchOperation
from launchdarkly_api.models.subscription_post import SubscriptionPost

from relay.store.client import Redis
from relay.subscriptions.urls import MASK
from tests import support

API_KEY = "0123456789abcdef0123456789abcdef"  # a Datadog API key is 32 hex digits
# the config LaunchDarkly's datadog integration takes, verbatim
LD_CONFIG = {"apiKey": API_KEY, "hostURL": "https://api.datadoghq.com"}


def _create(ld: IntegrationAuditLogSubscriptionsApi, name: str, **config: Any) -> Integration:
    post = SubscriptionPost.model_validate({"name": name, "config": {**LD_CONFIG, **config}})
    created = ld.create_subscription("datadog", post)
    assert isinstance(created, Integration)
    return created


def _shown_key(subscription: Integration) -> Any:
    assert subscription.config is not None
    return subscription.config["apiKey"]


def test_create_with_launchdarklys_datadog_config(ld: IntegrationAuditLogSubscriptionsApi) -> None:
    """LaunchDarkly's {apiKey, hostURL} creates a datadog subscription; the key is masked."""
    created = _create(ld, "Flags to Datadog")
    assert created.kind == "datadog" and created.name == "Flags to Datadog"
    assert created.on is True
    assert created.links is not None
    assert created.links["self"].href == f"/api/v2/integrations/datadog/{created.id}"
    assert created.config is not None
    assert created.config["hostURL"] == "https://api.datadoghq.com"
    assert created.config["hideMemberDetails"] is False  # the manifest's default
    assert _shown_key(created) == MASK


def test_patch_keeps_the_key_and_never_shows_it(
    ld: IntegrationAuditLogSubscriptionsApi, redis_client: Redis
) -> None:
    """JSON Patch of a config field and of `on` answers masked; the stored key is kept."""
    # given
    sub_id = _create(ld, "Flags to Datadog").id
    assert sub_id is not None
    # when
    updated = ld.update_subscription(
        "datadog",
        sub_id,
        [
            PatchOperation(op="replace", path="/config/hideMemberDetails", value=True),
            PatchOperation(op="replace", path="/on", value=False),
        ],
    )
    fetched = ld.get_subscription_by_id("datadog", sub_id)
    # then
    for answer in (updated, fetched):
        assert answer.on is False and answer.config is not None
        assert answer.config["hideMemberDetails"] is True
        assert _shown_key(answer) == MASK
    stored = support.stored_subscription(redis_client, sub_id)
    assert stored.config["apiKey"] == API_KEY
    assert stored.config["hideMemberDetails"] is True


def test_the_datadog_list_holds_only_datadog_subscriptions(
    ld: IntegrationAuditLogSubscriptionsApi,
) -> None:
    """get_subscriptions("datadog") lists the datadog ones only, totalCount counting them."""
    # given
    first = _create(ld, "first")
    second = _create(ld, "second", hostURL="https://api.datadoghq.eu")
    webhook = SubscriptionPost.model_validate(
        {"name": "hook", "config": {"url": "https://hooks.example.com/a", "format": "unleash"}}
    )
    ld.create_subscription("webhook", webhook)
    # when
    listed = ld.get_subscriptions("datadog")
    raw = ld.get_subscriptions_with_http_info("datadog").raw_data
    # then
    assert listed.key == "datadog"
    assert [item.id for item in listed.items or []] == [first.id, second.id]
    assert {item.kind for item in listed.items or []} == {"datadog"}
    assert all(_shown_key(item) == MASK for item in listed.items or [])
    assert json.loads(raw)["totalCount"] == 2


def test_no_answer_carries_the_key(ld: IntegrationAuditLogSubscriptionsApi) -> None:
    """The raw bodies of create, get, patch and list never hold the API key."""
    post = SubscriptionPost.model_validate({"name": "raw", "config": LD_CONFIG})
    created = ld.create_subscription_with_http_info("datadog", post)
    sub_id = json.loads(created.raw_data)["_id"]
    patch = [PatchOperation(op="replace", path="/name", value="renamed")]
    answers = [
        created.raw_data,
        ld.get_subscription_by_id_with_http_info("datadog", sub_id).raw_data,
        ld.update_subscription_with_http_info("datadog", sub_id, patch).raw_data,
        ld.get_subscriptions_with_http_info("datadog").raw_data,
    ]
    for raw in answers:
        assert API_KEY.encode() not in raw and MASK.encode() in raw
