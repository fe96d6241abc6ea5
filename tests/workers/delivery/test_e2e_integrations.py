"""End to end: an operator's integration (a manifest folder) delivered by a real worker.

The manifest PUTs a rendered JSON document with a templated header; a template that fails
for an event is a dead delivery with the reason, never a retry.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from standardwebhooks import Webhook

from relay.cli.embedded_redis import start_redis
from relay.settings import Settings
from tests import support
from tests.relay.integrations.test_manifests import manifest, write_integration

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ADMIN = {"Authorization": "e2e-admin"}
SUBS = "/api/v2/integrations/example"
FLAG_TEMPLATE = """{
  "summary": "{{{title.plainText}}}",
  "flag": "{{key}}",
  "environment": "{{project.environment.key}}",
  "level": "{{formVariables.level}}",
  "tags": [{{#each tags}}"{{{this}}}"{{#unless @last}}, {{/unless}}{{/each}}]
  {{~#if event.data.broken}},{{/if}}
}"""
CHECK_TEMPLATE = '{"check": "{{{title.plainText}}}"}'


@pytest.fixture(scope="module")
def e2e_settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """A Redis of this module's own, and an integrations folder with `example`."""
    server = start_redis(tmp_path_factory.mktemp("integrations-redis"))
    root = tmp_path_factory.mktemp("integrations")
    document = manifest()
    hook = document["capabilities"]["auditLogEventsHook"]
    hook["endpoint"]["method"] = "PUT"
    hook["templates"] = {"flag": "templates/flag.json.hbs", "validation": "templates/check.hbs"}
    write_integration(
        root,
        "example",
        document,
        {"templates/flag.json.hbs": FLAG_TEMPLATE, "templates/check.hbs": CHECK_TEMPLATE},
    )
    yield support.e2e_settings(
        redis_url=server.url,
        admin_token=ADMIN["Authorization"],
        data_dir=tmp_path_factory.mktemp("integrations-data"),
        integrations_dir=root,
    )
    server.stop()


@pytest.fixture(scope="module")
def api(e2e_settings: Settings, start_module_worker: Callable[..., Any]) -> Iterator[TestClient]:
    with support.api_with_worker(e2e_settings, start_module_worker) as api:
        yield api


def _subscribe(api: TestClient, base: str) -> str:
    config = {"base": base, "token": "s3cret-token", "level": "warn"}
    response = api.post(SUBS, json={"name": "e2e", "config": config}, headers=ADMIN)
    assert response.status_code == 201, response.text
    sub_id: str = response.json()["_id"]
    return sub_id


def _flag_event(name: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": "feature-environment-enabled",
        "createdBy": "alice@example.com",
        "featureName": name,
        "project": "web",
        "environment": "production",
        "tags": [{"type": "team", "value": "core"}],
        **extra,
    }


def test_an_event_is_rendered_by_the_manifest_and_sent_as_it_says(
    api: TestClient, receivers: Any
) -> None:
    """The flag template renders the event, PUT to the rendered URL with the rendered header."""
    # given
    receiver = receivers()
    sub_id = _subscribe(api, receiver.url.removesuffix("/hook"))
    # when
    support.post_events(api, [_flag_event("checkout")], headers=ADMIN)
    # then
    [request] = receiver.wait_for(1)
    assert request.method == "PUT" and request.path == "/events"
    assert request.headers["authorization"] == "Bearer s3cret-token"
    assert request.headers["content-type"] == "application/json"
    assert "webhook-signature" not in request.headers  # signatures are for `webhook` only
    assert json.loads(request.body) == {
        "summary": "alice@example.com turned on the flag checkout in production",
        "flag": "checkout",
        "environment": "production",
        "level": "warn",
        "tags": ["team:core"],
    }
    [delivery] = support.eventually(
        lambda: support.deliveries_of(
            api, sub_id, headers=ADMIN, integration="example", state="delivered"
        )
    )
    assert delivery["attemptCount"] == 1


def test_a_body_that_fails_to_render_is_dead_at_once_with_the_reason(
    api: TestClient, receivers: Any
) -> None:
    """A template rendering invalid JSON for this event: dead, not retried, nothing sent."""
    # given
    receiver = receivers()
    sub_id = _subscribe(api, receiver.url.removesuffix("/hook"))
    # when
    support.post_events(api, [_flag_event("broken", data={"broken": True})], headers=ADMIN)
    # then
    [delivery] = support.eventually(
        lambda: support.deliveries_of(
            api, sub_id, headers=ADMIN, integration="example", state="dead"
        )
    )
    assert "renders invalid JSON" in delivery["reason"]
    assert delivery["attemptCount"] == 0 and receiver.received == []


def test_the_test_send_renders_the_validation_template(api: TestClient, receivers: Any) -> None:
    """POST .../test sends the `validation` template's body and answers its attempt."""
    receiver = receivers()
    sub_id = _subscribe(api, receiver.url.removesuffix("/hook"))
    response = api.post(f"{SUBS}/{sub_id}/test", headers=ADMIN)
    assert response.status_code in (200, 202), response.text
    [request] = receiver.wait_for(1)
    assert json.loads(request.body) == {"check": "relay recorded an event about relay-test"}


def test_a_webhook_with_unleash_addon_parameters_sends_what_unleash_would(
    api: TestClient, receivers: Any
) -> None:
    """An Unleash webhook addon's config moves over as is: Mustache body, content type,
    authorization and custom headers; signed with a plain LaunchDarkly-style secret."""
    # given
    receiver = receivers()
    secret = "my-very-secret-value-123"
    config = {
        "url": receiver.url,
        "secret": secret,
        "contentType": "text/plain; charset=utf-8",
        "authorization": "Bearer addon-token",
        "customHeaders": '{"X-Team": "core"}',
        "bodyTemplate": "{{event.type}} of {{event.featureName}} by {{event.createdBy}}",
    }
    response = api.post(
        "/api/v2/integrations/webhook", json={"name": "addon", "config": config}, headers=ADMIN
    )
    assert response.status_code == 201, response.text
    # when
    support.post_events(api, [_flag_event("addon-flag")], headers=ADMIN)
    # then
    [request] = receiver.wait_for(1)
    assert request.body == b"feature-environment-enabled of addon-flag by alice@example.com"
    assert request.headers["content-type"] == "text/plain; charset=utf-8"
    assert request.headers["authorization"] == "Bearer addon-token"
    assert request.headers["x-team"] == "core"
    expected = hmac.new(secret.encode(), request.body, hashlib.sha256).hexdigest()
    assert request.headers["x-ld-signature"] == expected
    # the body is not JSON, which Webhook.verify parses: the signature is compared instead
    at = datetime.fromtimestamp(int(request.headers["webhook-timestamp"]), tz=UTC)
    signed = Webhook(secret.encode()).sign(request.headers["webhook-id"], at, request.body.decode())
    assert request.headers["webhook-signature"] == signed
