"""The auth matrix: every route that exists x every role x no token."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from relay.api.app import create_app
from relay.settings import Settings

PUBLIC = "public"
SESSION = "session"  # the console's own session: its cookie only, never a token header

# who may call what: the contract of the README's roles table
EXPECTED: dict[tuple[str, str], str] = {
    ("GET", "/healthz"): PUBLIC,
    ("GET", "/readyz"): PUBLIC,
    ("GET", "/metrics"): "read",
    ("POST", "/api/v2/tokens"): "manage_tokens",
    ("GET", "/api/v2/tokens"): "manage_tokens",
    ("DELETE", "/api/v2/tokens/{token_id}"): "manage_tokens",
    ("POST", "/api/events"): "ingest",
    ("GET", "/api/admin/events"): "read",
    ("GET", "/api/admin/events/{featureName}"): "read",
    ("GET", "/api/admin/search/events"): "read",
    ("POST", "/api/client/metrics"): "ingest",
    ("GET", "/api/v2/engineering-insights/flag-events"): "read",
    ("GET", "/api/v2/integration-manifests"): "read",
    ("GET", "/api/v2/integration-manifests/{integrationKey}"): "read",
    ("POST", "/api/v2/integrations/{integrationKey}"): "write",
    ("GET", "/api/v2/integrations/{integrationKey}"): "read",
    ("GET", "/api/v2/integrations/{integrationKey}/{id}"): "read",
    ("PATCH", "/api/v2/integrations/{integrationKey}/{id}"): "write",
    ("DELETE", "/api/v2/integrations/{integrationKey}/{id}"): "write",
    ("GET", "/api/v2/integrations/{integrationKey}/{id}/deliveries"): "write",
    ("GET", "/api/v2/integrations/{integrationKey}/{id}/deliveries/{deliveryId}"): "write",
    ("POST", "/api/v2/integrations/{integrationKey}/{id}/deliveries/{deliveryId}/retry"): "write",
    ("POST", "/api/v2/integrations/{integrationKey}/{id}/replay"): "write",
    ("POST", "/api/v2/integrations/{integrationKey}/{id}/test"): "write",
    ("GET", "/api/v2/integrations/{integrationKey}/{id}/explain"): "read",
    ("POST", "/api/v2/policy-preview"): "read",
    ("GET", "/api/v2/events/{eventId}/explanations"): "read",
    ("GET", "/api/v2/status"): "read",
    ("GET", "/api/v2/deliveries"): "read",
    ("POST", "/console/session"): PUBLIC,  # signing in: the token is in the body
    ("GET", "/console/session"): SESSION,
    ("DELETE", "/console/session"): SESSION,
}

ROLE_CAPABILITIES = {
    "ingest": {"ingest"},
    "reader": {"read"},
    "writer": {"read", "write", "ingest"},
    "admin": {"read", "write", "ingest", "manage_tokens"},
}


def _routes(settings: Settings) -> set[tuple[str, str]]:
    # the OpenAPI document is the public list of routes (FastAPI nests included routers)
    paths = create_app(settings).openapi()["paths"]
    return {(method.upper(), path) for path, operations in paths.items() for method in operations}


def test_every_route_is_in_the_matrix(settings: Settings) -> None:
    """No route exists without a declared role, and the table names no route that is gone."""
    assert _routes(settings) == set(EXPECTED)


def _concrete(path: str) -> str:
    return re.sub(r"\{integrationKey\}", "webhook", re.sub(r"\{[^}]+\}", "x1", path))


@pytest.fixture
def role_headers(
    app_client: TestClient, admin_headers: dict[str, str]
) -> dict[str, dict[str, str]]:
    """One real token per role, created over the API."""
    headers: dict[str, dict[str, str]] = {}
    for role in ROLE_CAPABILITIES:
        created = app_client.post(
            "/api/v2/tokens", json={"name": role, "role": role}, headers=admin_headers
        ).json()
        headers[role] = {"Authorization": created["token"]}
    return headers


@pytest.mark.parametrize(("method", "path"), sorted(EXPECTED))
def test_route_answers_by_role(
    app_client: TestClient, role_headers: dict[str, dict[str, str]], method: str, path: str
) -> None:
    """No token: 401 unauthorized; a role without the right: 403 forbidden; with it: neither."""
    needed = EXPECTED[(method, path)]
    url = _concrete(path)
    anonymous = app_client.request(method, url, json={})
    if needed == PUBLIC:
        assert anonymous.status_code not in (401, 403)
        return
    if needed == SESSION:  # a token header is no session (tests/relay/api/test_console_*)
        assert anonymous.status_code == 401
        for headers in role_headers.values():
            assert app_client.request(method, url, headers=headers).status_code == 401
        return
    assert anonymous.status_code == 401
    assert anonymous.json()["code"] == "unauthorized"
    bogus = app_client.request(method, url, json={}, headers={"Authorization": "rly_nope"})
    assert bogus.status_code == 401
    for role, capabilities in ROLE_CAPABILITIES.items():
        response = app_client.request(method, url, json={}, headers=role_headers[role])
        if needed in capabilities:
            assert response.status_code not in (401, 403), (role, response.text)
            assert response.status_code < 500, (role, response.text)
        else:
            assert response.status_code == 403, (role, response.text)
            assert response.json()["code"] == "forbidden"
