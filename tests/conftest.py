"""Shared fixtures: a real Redis (embedded unless RELAY_TEST_REDIS_URL), settings, the app."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import uvicorn
from fastapi.testclient import TestClient

from relay.api.app import create_app
from relay.embedded import free_port, start_redis
from relay.settings import Settings
from relay.store.client import Redis

ADMIN_TOKEN = "test-admin-token"
SHARED = Path(__file__).resolve().parents[1].parent / "shared"


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Redis for the whole session; the embedded one unless RELAY_TEST_REDIS_URL is set."""
    given = os.environ.get("RELAY_TEST_REDIS_URL")
    if given:
        yield given
        return
    server = start_redis(tmp_path_factory.mktemp("redis"))
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[Redis]:
    """A client on a database emptied before each test."""
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    client.flushdb()
    yield client
    client.close()


@pytest.fixture
def settings(redis_url: str, tmp_path: Path) -> Settings:
    """Settings for tests: fast retries, private destinations allowed (receivers on 127.0.0.1)."""
    return Settings(
        redis_url=redis_url,
        admin_token=ADMIN_TOKEN,
        data_dir=tmp_path / "data",
        retry_schedule=[0.2, 0.4, 0.8],
        retry_jitter=0.0,
        allow_private_destinations=True,
    )


@pytest.fixture
def app_client(settings: Settings, redis_client: Redis) -> Iterator[TestClient]:
    """The API in-process, on the test Redis."""
    with TestClient(create_app(settings, redis=redis_client)) as client:
        yield client


@pytest.fixture
def admin_headers() -> dict[str, str]:
    return {"Authorization": ADMIN_TOKEN}


@pytest.fixture
def live_api(settings: Settings, redis_client: Redis) -> Iterator[str]:
    """The API served by uvicorn on 127.0.0.1 in a thread (for real HTTP clients); its base URL."""
    port = free_port()
    config = uvicorn.Config(
        create_app(settings, redis=redis_client), host="127.0.0.1", port=port, log_level="warning"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started, "uvicorn did not start"
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(5)
