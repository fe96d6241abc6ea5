"""Helpers shared by tests in several folders (fixtures live in conftest.py)."""

from __future__ import annotations

from typing import Any

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
