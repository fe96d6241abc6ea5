"""A destination name that does not resolve yet is accepted at create and PATCH; the guard
still refuses a name resolving to a forbidden address, and such an address given as is.

Every test runs with the destination guard on (RELAY_ALLOW_PRIVATE_DESTINATIONS off, the
default): with it off nothing is resolved at all. The `.invalid` top-level domain never
resolves (RFC 2606), so the answer does not depend on the machine's DNS.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from fastapi.testclient import TestClient

from relay.settings import Settings
from relay.store.client import Redis
from tests.support import stored_subscription

UNRESOLVABLE = "https://hooks.example.invalid/relay"
PUBLIC = "https://93.184.215.14/relay"  # a public address: no DNS needed to pass the guard
INTEGRATIONS = ["webhook", "slack"]  # the webhook's own config, and a form's `url` variable
FORBIDDEN = [
    pytest.param("http://localhost:9/", "localhost resolves to", id="name-resolving-to-loopback"),
    pytest.param("http://169.254.169.254/latest", "a link-local address", id="link-local-address"),
]

# redis_client: each test starts on an emptied database
pytestmark = pytest.mark.usefixtures("redis_client")


@pytest.fixture
def guarded(settings: Settings, api_for: Callable[[Settings], TestClient]) -> TestClient:
    """The API with the destination guard on."""
    return api_for(settings.model_copy(update={"allow_private_destinations": False}))


def _create(api: TestClient, headers: dict[str, str], integration: str, url: str) -> httpx.Response:
    body = {"name": "audit", "config": {"url": url}, "statements": []}
    return api.post(f"/api/v2/integrations/{integration}", json=body, headers=headers)


def _replace_url(
    api: TestClient, headers: dict[str, str], integration: str, sub_id: str, url: str
) -> httpx.Response:
    patch = [{"op": "replace", "path": "/config/url", "value": url}]
    return api.patch(f"/api/v2/integrations/{integration}/{sub_id}", json=patch, headers=headers)


def _created_id(response: httpx.Response) -> str:
    assert response.status_code == 201, response.text
    sub_id: str = response.json()["_id"]
    return sub_id


def _refused_on_url(response: httpx.Response) -> str:
    """The reason of a 400 whose one problem is config.url."""
    assert response.status_code == 400, response.text
    [problem] = response.json()["errors"]
    assert problem["attribute"] == "config.url", problem
    reason: str = problem["reason"]
    return reason


@pytest.mark.parametrize("integration", INTEGRATIONS)
def test_a_name_that_does_not_resolve_is_accepted_at_create(
    guarded: TestClient, admin_headers: dict[str, str], redis_client: Redis, integration: str
) -> None:
    """POST with an unresolvable host is 201 and the URL is stored as given."""
    sub_id = _created_id(_create(guarded, admin_headers, integration, UNRESOLVABLE))
    record = stored_subscription(redis_client, sub_id)
    assert record.config["url"] == UNRESOLVABLE and record.on


@pytest.mark.parametrize("integration", INTEGRATIONS)
def test_a_url_patched_to_a_name_that_does_not_resolve_is_accepted(
    guarded: TestClient, admin_headers: dict[str, str], redis_client: Redis, integration: str
) -> None:
    """PATCH replacing /config/url with an unresolvable host is 200 and stored."""
    # given
    sub_id = _created_id(_create(guarded, admin_headers, integration, PUBLIC))
    # when
    response = _replace_url(guarded, admin_headers, integration, sub_id, UNRESOLVABLE)
    # then
    assert response.status_code == 200, response.text
    assert stored_subscription(redis_client, sub_id).config["url"] == UNRESOLVABLE


@pytest.mark.parametrize("integration", INTEGRATIONS)
@pytest.mark.parametrize(("url", "named"), FORBIDDEN)
def test_a_forbidden_destination_is_still_refused_at_create(
    guarded: TestClient,
    admin_headers: dict[str, str],
    redis_client: Redis,
    integration: str,
    url: str,
    named: str,
) -> None:
    """A name resolving to a forbidden address, or such an address, is a 400 on config.url."""
    reason = _refused_on_url(_create(guarded, admin_headers, integration, url))
    assert named in reason
    listed = guarded.get(f"/api/v2/integrations/{integration}", headers=admin_headers)
    assert listed.json()["items"] == []


@pytest.mark.parametrize("integration", INTEGRATIONS)
@pytest.mark.parametrize(("url", "named"), FORBIDDEN)
def test_a_forbidden_destination_is_still_refused_at_patch(
    guarded: TestClient,
    admin_headers: dict[str, str],
    redis_client: Redis,
    integration: str,
    url: str,
    named: str,
) -> None:
    """PATCH to a name resolving to a forbidden address, or such an address, is a 400 and
    leaves the stored URL as it was."""
    # given
    sub_id = _created_id(_create(guarded, admin_headers, integration, PUBLIC))
    # when
    response = _replace_url(guarded, admin_headers, integration, sub_id, url)
    # then
    assert named in _refused_on_url(response)
    assert stored_subscription(redis_client, sub_id).config["url"] == PUBLIC
