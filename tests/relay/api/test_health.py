"""Liveness and readiness, and the API's self-description."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from relay.api.app import create_app
from relay.settings import Settings
from relay.store import heartbeats, keys
from relay.store.client import Redis
from tests.redis_topology import RedisTopology
from tests.support import eventually


def test_healthz_needs_no_token(app_client: TestClient) -> None:
    """GET /healthz answers 200 ok to anyone while the process runs."""
    response = app_client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_is_503_without_a_worker_heartbeat(app_client: TestClient) -> None:
    """With Redis up but no worker heartbeat, /readyz is 503 and says what is missing."""
    response = app_client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "not ready"
    assert body["redis"] is True
    assert body["workers"] == []
    assert [m.split(":")[0] for m in body["missing"]] == ["worker"]


def test_readyz_is_200_after_a_heartbeat(app_client: TestClient, redis_client: Redis) -> None:
    """Once a worker has sent a heartbeat, /readyz is 200 and names it."""
    # given
    heartbeats.beat(redis_client, worker="celery@w1")
    # when
    response = app_client.get("/readyz")
    # then
    assert response.status_code == 200
    assert response.json() == {
        "status": "ready",
        "redis": True,
        "workers": ["celery@w1"],
        "missing": [],
        "warnings": [],
    }


def test_readyz_ignores_a_stale_heartbeat(
    app_client: TestClient, redis_client: Redis, settings: Settings
) -> None:
    """A heartbeat older than RELAY_WORKER_HEARTBEAT_TTL (30 s) does not count."""
    stale_ms = int((time.time() - settings.worker_heartbeat_ttl - 5) * 1000)
    redis_client.zadd(keys.WORKERS, {"celery@gone": stale_ms})
    response = app_client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["workers"] == []


def test_readyz_is_503_when_redis_is_down(client_without_redis: TestClient) -> None:
    """Without Redis, /readyz is 503 with redis false; /healthz still answers."""
    response = client_without_redis.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["redis"] is False
    assert body["missing"][0].startswith("redis:")
    assert client_without_redis.get("/healthz").status_code == 200


def test_openapi_and_docs_are_served(app_client: TestClient) -> None:
    """/openapi.json describes the health routes; /docs serves the interactive page."""
    spec = app_client.get("/openapi.json").json()
    assert {"/healthz", "/readyz"} <= set(spec["paths"])
    assert "503" in spec["paths"]["/readyz"]["get"]["responses"]
    docs = app_client.get("/docs")
    assert docs.status_code == 200
    assert "text/html" in docs.headers["content-type"]


@pytest.mark.slow
def test_readyz_warns_when_the_write_concern_lacks_replicas(tmp_path: Path) -> None:
    """With RELAY_REDIS_MIN_REPLICAS above the replicas connected, /readyz stays ready (reads
    work; writes answer 503 telling clients to retry) and warns why writes are refused."""
    with RedisTopology(tmp_path / "redis", replicas=1) as topology:
        primary = topology.primary()
        settings = Settings(redis_url=primary.url, redis_min_replicas=1, admin_token="t")
        heartbeats.beat(primary.client(), worker="celery@w1")
        with TestClient(create_app(settings)) as api:
            assert api.get("/readyz").json()["warnings"] == []
            [replica] = topology.replicas_of_primary()
            topology.stop(replica)
            # the primary sees the replica's connection close
            eventually(lambda: api.get("/readyz").json()["warnings"], what="a warning")
            response = api.get("/readyz")
        assert response.status_code == 200
        assert response.json()["warnings"] == [
            "redis replicas: 0 connected, 1 required (RELAY_REDIS_MIN_REPLICAS): "
            "ingest and subscription changes answer 503"
        ]
