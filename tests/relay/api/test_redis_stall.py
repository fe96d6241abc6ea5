"""A Redis that stops answering holds the requests that need it, never the API's event loop."""

from __future__ import annotations

import json
import os
import signal
import statistics
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import redis

from relay.api.app import create_app
from relay.cli.embedded_redis import EmbeddedRedis, start_redis
from relay.settings import Settings
from relay.store import tokens
from relay.store.tokens import Role
from tests.support import serve_in_thread

STALL_S = 3.0
HEALTHZ_BUDGET_S = 0.1  # liveness answers this fast while Redis is stopped (median)
HEALTHZ_MAX_S = 0.25  # and never slower than this (a shared 2-core machine)
# requests sent while Redis is stopped: more reads with the bootstrap token (checked
# without Redis: each holds a thread of Starlette's pool, 40, in its route) than threads
WAITING = 150
ADMIN = "stall-admin"
EVENT = {"type": "feature-created", "createdBy": "a@b", "featureName": "stall"}


@dataclass(frozen=True)
class StallRig:
    base: str
    redis: EmbeddedRedis
    reader: str  # a stored token's secret: its check needs Redis
    ingester: str


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[StallRig]:
    """A Redis of this test's own (it gets stopped), and the API on it served by uvicorn."""
    server = start_redis(tmp_path / "redis")
    try:
        client = redis.Redis.from_url(server.url, decode_responses=True)
        _, reader = tokens.create_token(client, name="reader", role=Role.READER)
        _, ingester = tokens.create_token(client, name="ingester", role=Role.INGEST)
        client.close()
        settings = Settings(redis_url=server.url, admin_token=ADMIN, data_dir=tmp_path)
        with serve_in_thread(create_app(settings), settings) as url:
            yield StallRig(url, server, reader, ingester)
    finally:
        os.kill(server.process.pid, signal.SIGCONT)  # never leave it stopped
        server.stop()


def _authenticated(http: httpx.Client, rig: StallRig, n: int) -> httpx.Response:
    """Request `n`: a read checked in Redis, an ingest, or a read by the bootstrap token."""
    if n % 3 == 1:
        return http.post(
            "/api/events", json={**EVENT, "id": n}, headers={"Authorization": rig.ingester}
        )
    token = rig.reader if n % 3 == 0 else ADMIN
    return http.get("/api/admin/events", headers={"Authorization": token})


def test_healthz_answers_while_redis_is_stopped_and_the_rest_waits(rig: StallRig) -> None:
    """With Redis stopped (SIGSTOP), /healthz answers within 100 ms while authenticated
    requests wait (or get the seeds' 503); once Redis goes on (SIGCONT) they are answered."""
    # given: the API serves, its Redis connections are open
    limits = httpx.Limits(max_connections=WAITING + 10)
    with (
        httpx.Client(base_url=rig.base, timeout=30) as http,
        httpx.Client(base_url=rig.base, timeout=30, limits=limits) as crowd,
        ThreadPoolExecutor(WAITING) as pool,
    ):
        assert http.get("/healthz").status_code == 200
        assert _authenticated(http, rig, 0).status_code == 200
        assert _authenticated(http, rig, 1).status_code == 202
        # when: Redis stops, with authenticated requests waiting on it
        os.kill(rig.redis.process.pid, signal.SIGSTOP)
        stopped = time.monotonic()
        waiting: list[Future[httpx.Response]] = [
            pool.submit(_authenticated, crowd, rig, n) for n in range(2, WAITING + 2)
        ]
        time.sleep(0.5)  # they reached the API and wait on Redis
        took = []
        while time.monotonic() - stopped < STALL_S:
            start = time.perf_counter()
            response = http.get("/healthz", timeout=5)
            took.append(time.perf_counter() - start)
            assert response.status_code == 200
            time.sleep(0.1)
        os.kill(rig.redis.process.pid, signal.SIGCONT)
        answers = [f.result(timeout=20) for f in waiting]
        resumed = time.monotonic() - stopped
        after = _authenticated(http, rig, 999), _authenticated(http, rig, 1000)
    # then
    assert statistics.median(took) < HEALTHZ_BUDGET_S, took
    assert max(took) < HEALTHZ_MAX_S, took
    for answer in answers:
        if answer.status_code == 503:  # the seeds' error shape, not a hang or a 500
            assert answer.json() == {
                "code": "service_unavailable",
                "message": "storage is unavailable",
            }
        else:
            assert answer.status_code in (200, 202), answer.text
    assert resumed < STALL_S + 10, f"requests took {resumed:.1f}s after Redis stopped"
    assert after[0].status_code == 200
    assert after[1].status_code == 202 and len(json.loads(after[1].text)["ids"]) == 1
