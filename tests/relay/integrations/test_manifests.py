"""Integration manifests: loaded and checked at start, listed by the API, and subscriptions
for every key validated against their form variables."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from relay.api.app import create_app
from relay.integrations.catalog import load_catalog
from relay.integrations.manifest import ManifestError
from relay.settings import Settings
from relay.store import keys
from relay.store.client import Redis
from relay.subscriptions.urls import MASK

BUILTINS = {
    "datadog",
    "elastic",
    "grafana",
    "honeycomb",
    "msteams",
    "new-relic",
    "pagerduty",
    "slack",
    "splunk",
}
TEMPLATE = '{"text": "{{{title.plainText}}}", "who": "{{{member.displayName}}}"}'


def manifest(**overrides: Any) -> dict[str, Any]:
    """A small valid manifest: a `token` secret, a `base` URL, a `level` enum, a flag."""
    document: dict[str, Any] = {
        "name": "Example",
        "overview": "An example service.",
        "formVariables": [
            {"key": "base", "name": "Base URL", "type": "uri"},
            {"key": "token", "name": "Token", "type": "string", "isSecret": True},
            {
                "key": "level",
                "name": "Level",
                "type": "enum",
                "allowedValues": ["info", "warn"],
                "defaultValue": "info",
                "isOptional": True,
            },
            {"key": "loud", "name": "Loud", "type": "boolean", "isOptional": True},
        ],
        "capabilities": {
            "auditLogEventsHook": {
                "endpoint": {
                    "url": "{{{base}}}/events",
                    "method": "POST",
                    "headers": [
                        {"name": "Content-Type", "value": "application/json"},
                        {"name": "Authorization", "value": "Bearer {{{token}}}"},
                    ],
                },
                "templates": {"default": "templates/default.json.hbs"},
                "defaultPolicy": [
                    {"effect": "allow", "resources": ["proj/*:env/*:flag/*"], "actions": ["*"]}
                ],
            },
            "trigger": {"documentation": "https://example.com"},
        },
    }
    document.update(overrides)
    return document


def write_integration(
    root: Path, key: str, document: dict[str, Any], templates: dict[str, str] | None = None
) -> Path:
    folder = root / key
    (folder / "templates").mkdir(parents=True)
    (folder / "manifest.json").write_text(json.dumps(document))
    for name, text in (templates or {"templates/default.json.hbs": TEMPLATE}).items():
        (folder / name).write_text(text)
    return folder


def hook(document: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = document["capabilities"]["auditLogEventsHook"]
    return found


@pytest.fixture
def folder_settings(settings: Settings, tmp_path: Path) -> Settings:
    """Settings with an operator folder holding the `example` integration."""
    root = tmp_path / "integrations"
    write_integration(root, "example", manifest())
    return settings.model_copy(update={"integrations_dir": root})


@pytest.fixture
def api(api_for: Callable[[Settings], TestClient], folder_settings: Settings) -> TestClient:
    return api_for(folder_settings)


def test_the_builtins_load_with_their_secrets_marked(settings: Settings) -> None:
    """Every built-in loads, sends audit events, and marks its credentials secret."""
    catalog = load_catalog(settings)
    assert {m.key for m in catalog} == BUILTINS
    assert catalog.keys()[0] == "webhook"
    assert all(m.builtin and m.templates for m in catalog)
    datadog = catalog.get("datadog")
    assert datadog is not None and "apiKey" in datadog.secret_keys
    slack = catalog.get("slack")
    assert slack is not None and slack.secret_keys == {"url"}


def _broken(change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    document = manifest()
    change(document)
    return document


BROKEN = [
    (
        "no hook",
        _broken(lambda d: d["capabilities"].pop("auditLogEventsHook")),
        "capabilities.auditLogEventsHook",
    ),
    (
        "form type",
        _broken(lambda d: d["formVariables"][1].update(type="oauth")),
        "formVariables.1.type",
    ),
    (
        "enum values",
        _broken(lambda d: d["formVariables"][2].pop("allowedValues")),
        "formVariables.2.allowedValues",
    ),
    (
        "enum default",
        _broken(lambda d: d["formVariables"][2].update(defaultValue="x")),
        "formVariables.2.defaultValue",
    ),
    (
        "twice",
        _broken(lambda d: d["formVariables"].append(d["formVariables"][0])),
        "formVariables.4.key",
    ),
    ("method", _broken(lambda d: hook(d)["endpoint"].update(method="GET")), "endpoint.method"),
    (
        "url template",
        _broken(lambda d: hook(d)["endpoint"].update(url="{{#if base}}x")),
        "endpoint.url",
    ),
    (
        "template name",
        _broken(lambda d: hook(d)["templates"].update(audit="t.hbs")),
        "templates.audit",
    ),
    (
        "template file",
        _broken(lambda d: hook(d)["templates"].update(flag="templates/none.hbs")),
        "templates.flag",
    ),
    (
        "outside",
        _broken(lambda d: hook(d)["templates"].update(flag="../../x.hbs")),
        "templates.flag",
    ),
    (
        "policy",
        _broken(
            lambda d: hook(d).update(defaultPolicy=[{"effect": "allow", "resources": ["proj/"]}])
        ),
        "defaultPolicy",
    ),
    ("name", _broken(lambda d: d.pop("name")), "name"),
]


@pytest.mark.parametrize(("case", "document", "field"), BROKEN, ids=[c[0] for c in BROKEN])
def test_a_bad_manifest_is_refused_naming_its_file_and_field(
    tmp_path: Path, settings: Settings, case: str, document: dict[str, Any], field: str
) -> None:
    """A manifest relay cannot use stops the load with the file and the field named."""
    write_integration(tmp_path, "broken", document)
    with pytest.raises(ManifestError) as caught:
        load_catalog(settings.model_copy(update={"integrations_dir": tmp_path}))
    assert str(tmp_path / "broken") in str(caught.value)
    assert field in caught.value.field, (case, str(caught.value))


def test_a_template_that_does_not_compile_is_refused_with_its_place(
    tmp_path: Path, settings: Settings
) -> None:
    """A template with an unclosed block names the template field and where it fails."""
    write_integration(tmp_path, "broken", manifest(), {"templates/default.json.hbs": "{{#if a}}x"})
    with pytest.raises(ManifestError, match=r"templates\.default"):
        load_catalog(settings.model_copy(update={"integrations_dir": tmp_path}))


def test_the_key_webhook_is_relays_own(tmp_path: Path, settings: Settings) -> None:
    """A folder cannot take the key `webhook`."""
    write_integration(tmp_path, "webhook", manifest())
    with pytest.raises(ManifestError, match="webhook is relay's own"):
        load_catalog(settings.model_copy(update={"integrations_dir": tmp_path}))


def test_an_operator_folder_adds_and_replaces_integrations(
    tmp_path: Path, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """The operator's `slack` replaces the built-in; other capabilities are logged, ignored."""
    write_integration(tmp_path, "slack", manifest(name="Our Slack"))
    write_integration(tmp_path, "example", manifest())
    with caplog.at_level(logging.INFO):
        catalog = load_catalog(settings.model_copy(update={"integrations_dir": tmp_path}))
    slack = catalog.get("slack")
    assert slack is not None and slack.name == "Our Slack" and not slack.builtin
    assert catalog.get("example") is not None and len(catalog) == len(BUILTINS) + 1
    assert "capability trigger is ignored" in caplog.text


def test_the_api_does_not_start_with_a_bad_manifest(tmp_path: Path, settings: Settings) -> None:
    """A bad manifest in RELAY_INTEGRATIONS_DIR stops the API's start."""
    write_integration(tmp_path, "broken", _broken(lambda d: d["formVariables"][0].update(type="x")))
    app = create_app(settings.model_copy(update={"integrations_dir": tmp_path}))
    with pytest.raises(ManifestError, match=r"formVariables\.0\.type"), TestClient(app):
        pass


def test_manifests_are_listed_without_secrets(
    api: TestClient, admin_headers: dict[str, str]
) -> None:
    """The list has webhook, the built-ins and the folder's; one is shown by key; 404 else."""
    listed = api.get("/api/v2/integration-manifests", headers=admin_headers)
    assert listed.status_code == 200
    keys = [item["key"] for item in listed.json()["items"]]
    assert keys[0] == "webhook" and set(keys[1:]) == BUILTINS | {"example"}
    one = api.get("/api/v2/integration-manifests/example", headers=admin_headers).json()
    assert one["name"] == "Example" and one["overview"] == "An example service."
    assert [v["key"] for v in one["formVariables"]] == ["base", "token", "level", "loud"]
    endpoint = one["capabilities"]["auditLogEventsHook"]["endpoint"]
    assert endpoint["headers"] == ["Content-Type", "Authorization"]  # names, not values
    assert "Bearer" not in json.dumps(one)
    missing = api.get("/api/v2/integration-manifests/nope", headers=admin_headers)
    assert missing.status_code == 404 and "webhook" in missing.json()["message"]
    assert api.get("/api/v2/integration-manifests").status_code == 401


def _create(api: TestClient, headers: dict[str, str], config: dict[str, Any], **body: Any) -> Any:
    return api.post(
        "/api/v2/integrations/example",
        json={"name": "ex", "config": config, **body},
        headers=headers,
    )


def test_a_subscription_takes_defaults_the_default_policy_and_masks_secrets(
    api: TestClient, admin_headers: dict[str, str], redis_client: Redis
) -> None:
    """Created without statements and level: the manifest's policy and default; token masked."""
    created = _create(api, admin_headers, {"base": "https://example.com", "token": "t0ken-123"})
    assert created.status_code == 201, created.text
    answer = created.json()
    assert answer["config"] == {"base": "https://example.com", "token": MASK, "level": "info"}
    assert answer["statements"] == [
        {"effect": "allow", "resources": ["proj/*:env/*:flag/*"], "actions": ["*"]}
    ]
    assert "t0ken-123" not in created.text
    listed = api.get("/api/v2/integrations/example", headers=admin_headers).json()
    assert listed["totalCount"] == 1 and [i["_id"] for i in listed["items"]] == [answer["_id"]]
    others = api.get("/api/v2/integrations/webhook", headers=admin_headers).json()
    assert others["totalCount"] == 0 and others["items"] == []


CONFIG_PROBLEMS = [
    ({"base": "https://example.com"}, "config.token", "is required"),
    ({"base": "ftp://example.com", "token": "t"}, "config.base", "http or https"),
    ({"base": "https://example.com", "token": 5}, "config.token", "must be a string"),
    ({"base": "https://example.com", "token": "t", "level": "loud"}, "config.level", "one of"),
    ({"base": "https://example.com", "token": "t", "loud": "yes"}, "config.loud", "true or false"),
    ({"base": "https://example.com", "token": "t", "extra": 1}, "config.extra", "unknown field"),
    ({"base": "https://example.com", "token": "a\nb"}, "config.token", "control characters"),
]


@pytest.mark.parametrize(("config", "attribute", "reason"), CONFIG_PROBLEMS)
def test_a_config_that_does_not_fit_the_form_is_a_400_naming_the_field(
    api: TestClient,
    admin_headers: dict[str, str],
    config: dict[str, Any],
    attribute: str,
    reason: str,
) -> None:
    """Missing required values, wrong types, values outside allowedValues: 400 naming them."""
    response = _create(api, admin_headers, config)
    assert response.status_code == 400, response.text
    errors = {e["attribute"]: e["reason"] for e in response.json()["errors"]}
    assert reason in errors[attribute]


def test_a_masked_secret_written_back_is_kept_but_not_sent_elsewhere(
    api: TestClient, admin_headers: dict[str, str], redis_client: Redis
) -> None:
    """PATCH with the masked token keeps it; moving the base URL with it masked is a 400."""
    # given
    created = _create(api, admin_headers, {"base": "https://example.com", "token": "t0ken-123"})
    href = f"/api/v2/integrations/example/{created.json()['_id']}"
    # when: the level changes, the token comes back masked
    patch = [{"op": "replace", "path": "/config/level", "value": "warn"}]
    kept = api.patch(href, json=patch, headers=admin_headers)
    # then
    assert kept.status_code == 200, kept.text
    stored = redis_client.get(keys.subscription(created.json()["_id"])) or ""
    assert "t0ken-123" in stored and '"level":"warn"' in stored
    # when: the destination moves while the token stays masked
    moved = api.patch(
        href,
        json=[{"op": "replace", "path": "/config/base", "value": "https://elsewhere.example"}],
        headers=admin_headers,
    )
    # then
    assert moved.status_code == 400
    assert moved.json()["errors"][0]["attribute"] == "config.token"


def test_a_template_that_renders_invalid_json_is_refused_at_create(
    api_for: Callable[[Settings], TestClient],
    settings: Settings,
    tmp_path: Path,
    admin_headers: dict[str, str],
) -> None:
    """A body that does not parse as JSON for a sample event is a 400 with the reason."""
    root = tmp_path / "more"
    write_integration(root, "example", manifest(), {"templates/default.json.hbs": '{"a": {{x}} }'})
    api = api_for(settings.model_copy(update={"integrations_dir": root}))
    response = _create(api, admin_headers, {"base": "https://example.com", "token": "t"})
    assert response.status_code == 400
    assert "renders invalid JSON" in response.json()["message"]


def test_an_unknown_integration_is_a_404(api: TestClient, admin_headers: dict[str, str]) -> None:
    """Creating for a key no manifest declares is a 404 that lists the known keys."""
    response = api.post(
        "/api/v2/integrations/nope", json={"name": "x", "config": {}}, headers=admin_headers
    )
    assert response.status_code == 404 and "datadog" in response.json()["message"]
