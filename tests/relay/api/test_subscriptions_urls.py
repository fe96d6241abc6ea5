"""Webhook URLs a delivery could never be sent to are refused when written."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from relay.store import subscriptions
from relay.store.client import Redis

BASE = "/api/v2/integrations/webhook"


def _body(url: str) -> dict[str, Any]:
    return {"name": "audit", "config": {"url": url}, "statements": []}


@pytest.mark.parametrize(
    ("url", "suggested"),
    [
        ("http://ü.localhost:9/h", "xn--tda.localhost"),
        ("https://Bücher.example/hook?a=1", "xn--bcher-kva.example"),
    ],
    ids=["loopback", "public"],
)
def test_a_non_ascii_host_is_400_suggesting_its_idna_form(
    app_client: TestClient,
    admin_headers: dict[str, str],
    redis_client: Redis,
    url: str,
    suggested: str,
) -> None:
    """A host outside ASCII cannot go in a request's Host header: 400 naming the IDNA form."""
    response = app_client.post(BASE, json=_body(url), headers=admin_headers)
    assert response.status_code == 400, response.text
    [problem] = response.json()["errors"]
    assert problem["attribute"] == "config.url" and suggested in problem["reason"]
    assert "a=1" not in response.text  # a query value is a credential: not echoed
    assert subscriptions.list_subscriptions(redis_client) == []


def test_a_host_with_no_idna_form_is_400(
    app_client: TestClient, admin_headers: dict[str, str]
) -> None:
    """A non-ASCII host IDNA cannot encode (a symbol) is a 400 too, never a 500."""
    response = app_client.post(BASE, json=_body("https://☃☃.example/h"), headers=admin_headers)
    assert response.status_code == 400, response.text
    assert response.json()["errors"][0]["attribute"] == "config.url"
