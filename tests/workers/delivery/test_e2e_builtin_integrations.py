"""End to end: each built-in integration delivered by a real worker to a local receiver
that checks what the real service checks (tests/relay/integrations/service_checks.py).

Each subscription points the built-in's base-URL override (or its URL) at a receiver on
127.0.0.1 and is deleted when its test ends, so the next test's event goes to its own only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from relay.cli.embedded_redis import start_redis
from relay.integrations.catalog import load_catalog
from relay.settings import Settings
from tests import support
from tests.relay.integrations import service_checks
from tests.relay.integrations.service_checks import Check

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ADMIN = {"Authorization": "e2e-admin"}
Subscribe = Callable[[str, dict[str, Any]], str]


def _configs(base: str) -> dict[str, dict[str, Any]]:
    """Each built-in's config sending to `base` (a receiver's origin)."""
    return {
        "datadog": {"apiKey": "e2e-dd-api-key", "baseUrl": base},
        "elastic": {"url": base, "token": "ZTJlOmtleQ==", "index": "relay-audit"},
        "grafana": {"endpointUrl": base, "apiKey": "glsa_e2e_token"},
        "honeycomb": {"datasetName": "production", "apiKey": "e2e-hny-key", "baseUrl": base},
        "msteams": {
            "url": f"{base}/workflows/0a1b/triggers/manual/paths/invoke"
            "?api-version=2016-06-01&sig=e2e-signature"
        },
        "new-relic": {"accountId": "1234567", "apiKey": "e2e-nr-license", "baseUrl": base},
        "pagerduty": {"integrationKey": "e2e0123456789abcdef0123456789abc", "baseUrl": base},
        "slack": {"url": f"{base}/services/T0000000/B0000000/e2esecretpath"},
        "splunk": {"base-url": base, "token": "e2e-hec-token"},
    }


BUILTINS = sorted(_configs(""))


@pytest.fixture(scope="module")
def e2e_settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """A Redis of this module's own; quick retries; receivers on 127.0.0.1 allowed."""
    server = start_redis(tmp_path_factory.mktemp("builtin-redis"))
    yield support.e2e_settings(
        redis_url=server.url,
        admin_token=ADMIN["Authorization"],
        data_dir=tmp_path_factory.mktemp("builtin-data"),
        public_url="https://relay.example.com",  # messages link to the audit entry
    )
    server.stop()


@pytest.fixture(scope="module")
def api(e2e_settings: Settings, start_module_worker: Callable[..., Any]) -> Iterator[TestClient]:
    with support.api_with_worker(e2e_settings, start_module_worker) as api:
        yield api


@pytest.fixture(scope="module")
def checks(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Check]:
    """The service checks, Teams' with the published Adaptive Card schema when npm is here."""
    base = tmp_path_factory.getbasetemp()
    cache = (base.parent if base.name.startswith("popen-gw") else base) / "schema-cache"
    schema = service_checks.adaptive_card_schema(cache)
    return service_checks.checks_with(service_checks.card_validator(schema) if schema else None)


@pytest.fixture
def subscribe(api: TestClient) -> Iterator[Subscribe]:
    """Create subscriptions through the API; each is deleted when the test ends."""
    made: list[str] = []

    def create(key: str, config: dict[str, Any]) -> str:
        body = {"name": f"e2e {key}", "config": config}
        response = api.post(f"/api/v2/integrations/{key}", json=body, headers=ADMIN)
        assert response.status_code == 201, response.text
        sub_id: str = response.json()["_id"]
        made.append(f"/api/v2/integrations/{key}/{sub_id}")
        return sub_id

    yield create
    for path in made:
        assert api.delete(path, headers=ADMIN).status_code == 204


def _flag_event(name: str) -> dict[str, Any]:
    """A flag turned on in production (PagerDuty's default policy takes production only)."""
    return {
        "type": "feature-environment-enabled",
        "createdBy": "alice@example.com",
        "createdByUserId": 7,
        "featureName": name,
        "project": "web",
        "environment": "production",
        "tags": [{"type": "team", "value": "core"}],
    }


def _delivered(api: TestClient, key: str, sub_id: str) -> dict[str, Any]:
    delivery: dict[str, Any]
    [delivery] = support.eventually(
        lambda: support.deliveries_of(
            api, sub_id, headers=ADMIN, integration=key, state="delivered"
        ),
        what=f"the {key} delivery to be delivered",
    )
    return delivery


@pytest.mark.parametrize("key", BUILTINS)
def test_a_flag_event_reaches_the_service_as_it_documents(
    key: str,
    api: TestClient,
    receivers: Any,
    subscribe: Subscribe,
    checks: dict[str, Check],
) -> None:
    """One flag event: the worker sends what the service checks, and it is delivered."""
    # given
    receiver = receivers()
    config = _configs(receiver.url.removesuffix("/hook"))[key]
    sub_id = subscribe(key, config)
    # when
    support.post_events(api, [_flag_event(f"e2e-{key}")], headers=ADMIN)
    # then
    [request] = receiver.wait_for(1)
    checks[key](request, config)
    assert f"e2e-{key}".encode() in request.body
    assert _delivered(api, key, sub_id)["attemptCount"] == 1


def test_a_429_with_retry_after_is_retried_after_it_and_delivered(
    api: TestClient, receivers: Any, subscribe: Subscribe, checks: dict[str, Check]
) -> None:
    """Slack's rate limit (429, Retry-After: 1) delays the retry a second; then delivered."""
    # given
    receiver = receivers()
    receiver.reply(429, headers={"Retry-After": "1"}, body=b"rate_limited")
    config = _configs(receiver.url.removesuffix("/hook"))["slack"]
    sub_id = subscribe("slack", config)
    # when
    support.post_events(api, [_flag_event("rate-limited")], headers=ADMIN)
    # then
    first, second = receiver.wait_for(2)
    assert second.at - first.at >= 0.95, "retried before Retry-After (the schedule says 0.2 s)"
    assert second.body == first.body
    checks["slack"](second, config)
    assert _delivered(api, "slack", sub_id)["attemptCount"] == 2


def test_the_module_covers_every_builtin(tmp_path: Path) -> None:
    """The configs here name exactly the built-in integrations."""
    keys = {manifest.key for manifest in load_catalog(Settings(data_dir=tmp_path))}
    assert set(BUILTINS) == keys == set(service_checks.CHECKS)
