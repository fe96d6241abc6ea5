"""Fixtures of the store's tests that talk to Redis servers of their own."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from relay.settings import Settings
from relay.store.client import Redis, open_redis


@pytest.fixture
def open_client() -> Iterator[Callable[[Settings], Redis]]:
    """Opens relay's client for settings (open_redis); all closed after the test."""
    opened: list[Redis] = []

    def open_for(settings: Settings) -> Redis:
        opened.append(open_redis(settings))
        return opened[-1]

    yield open_for
    for client in opened:
        client.close()
