"""Helpers shared by tests in several folders (fixtures live in conftest.py)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient

from relay.store import subscriptions
from relay.store.client import Redis


def subscribe(
    client: Redis, *, on: bool = True, statements: list[dict[str, Any]] | None = None
) -> str:
    """Store a webhook subscription (unleash format, to a closed port); its id."""
    record = subscriptions.create_subscription(
        client,
        integration_key="webhook",
        name="test",
        config={"url": "http://127.0.0.1:9/hook", "format": "unleash", "headers": {}},
        statements=statements or [],
        on=on,
        tags=[],
    )
    return record.id


def deliveries_of(
    api: TestClient, sub_id: str, *, headers: dict[str, str], **params: Any
) -> list[dict[str, Any]]:
    """A subscription's deliveries through the API (`params`: limit, state, ...)."""
    response = api.get(
        f"/api/v2/integrations/webhook/{sub_id}/deliveries", params=params, headers=headers
    )
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def wait_until(check: Callable[[], Any], timeout: float = 15.0) -> Any:
    """Poll `check` every 50 ms until it returns something true; that value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"condition not met within {timeout}s")
