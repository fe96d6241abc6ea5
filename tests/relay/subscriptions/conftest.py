"""Fixtures of the subscription tests: LaunchDarkly's official client on a live relay."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from launchdarkly_api import ApiClient, Configuration, IntegrationAuditLogSubscriptionsApi


@pytest.fixture
def ld(
    live_api: str, admin_headers: dict[str, str]
) -> Iterator[IntegrationAuditLogSubscriptionsApi]:
    """The official client, authenticated as admin, pointed at the live relay."""
    configuration = Configuration(host=live_api, api_key={"ApiKey": admin_headers["Authorization"]})
    with ApiClient(configuration) as api_client:
        yield IntegrationAuditLogSubscriptionsApi(api_client)
