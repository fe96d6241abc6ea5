"""`/metrics` after a real run: API and worker processes sharing a multiprocess directory.

The API (`relay serve`) and a Celery worker run as processes of their own with
PROMETHEUS_MULTIPROC_DIR set, as `relay up` runs them; a scrape of the API must show what
both did: events the API ingested, deliveries and attempts the worker made.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from relay.cli.embedded_redis import free_port
from relay.settings import Settings
from relay.store.client import Redis
from tests.support import eventually, subscribe_via_api

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture
def metrics_dir(tmp_path: Path) -> Path:
    path = tmp_path / "metrics"
    path.mkdir()
    return path


@pytest.fixture
def api(settings: Settings, redis_client: Redis, metrics_dir: Path) -> Iterator[httpx.Client]:
    """`relay serve` in its own process, writing its metrics to `metrics_dir`."""
    port = free_port()
    env = {
        **os.environ,
        "RELAY_REDIS_URL": settings.require_redis_url(),
        "RELAY_ADMIN_TOKEN": str(settings.admin_token),
        "RELAY_ALLOW_PRIVATE_DESTINATIONS": "true",
        "RELAY_LOG_LEVEL": "WARNING",
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
    }
    command = [sys.executable, "-m", "relay.cli", "serve", "--port", str(port)]
    log = (metrics_dir.parent / "api.log").open("wb")
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    headers = {"Authorization": f"Bearer {settings.admin_token}"}
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=10)
    try:
        _wait_until_up(client, process)
        yield client
    finally:
        client.close()
        process.terminate()
        process.wait(15)
        log.close()


def _wait_until_up(client: httpx.Client, process: subprocess.Popen[bytes]) -> None:
    def up() -> bool:
        assert process.poll() is None, "the API exited"
        return client.get("/healthz").status_code == 200

    errors = (httpx.TransportError,)
    eventually(up, 30, interval=0.1, ignoring=errors, what="the API to answer")


def scrape(api: httpx.Client) -> Samples:
    response = api.get("/metrics")
    assert response.status_code == 200, response.text
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def wait_for(api: httpx.Client, done: Callable[[Samples], bool], timeout: float = 20) -> Samples:
    """Scrape until `done` holds (the worker records outcomes just after the receiver answers)."""
    deadline = time.monotonic() + timeout
    samples = scrape(api)
    while not done(samples) and time.monotonic() < deadline:
        time.sleep(0.2)
        samples = scrape(api)
    return samples


def test_a_run_moves_the_counters_by_what_happened(
    settings: Settings,
    api: httpx.Client,
    metrics_dir: Path,
    receivers: Callable[[], Any],
    start_worker: Callable[..., Any],
) -> None:
    """3 events to 2 subscriptions, one receiver failing once: the scrape counts exactly that."""
    # given
    start_worker(settings, env={"PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)})
    steady, flaky = receivers(), receivers()
    flaky.reply(500, times=1)
    for receiver in (steady, flaky):
        subscribe_via_api(api, receiver.url, name="metrics")
    events = [
        {"id": n, "type": "feature-created", "createdBy": "m", "featureName": f"f{n}"}
        for n in range(3)
    ]
    # when
    response = api.post("/api/events?source=e2e", json=events)
    assert response.status_code == 202, response.text
    steady.wait_for(3)
    flaky.wait_for(4)  # one 500, then the retry
    samples = wait_for(
        api,
        lambda s: (
            value(s, "relay_deliveries_total", outcome="delivered", kind="event") >= 6
            and value(s, "relay_fanout_lag_seconds_count") >= 5
        ),
    )
    # then
    assert value(samples, "relay_events_ingested_total", source="e2e", type="feature-created") == 3
    assert value(samples, "relay_deliveries_total", outcome="delivered", kind="event") == 6
    assert value(samples, "relay_deliveries_total", outcome="retry", kind="event") == 1
    assert value(samples, "relay_deliveries_total", outcome="dead", kind="event") == 0
    assert value(samples, "relay_delivery_attempts_total", status="2xx") == 6
    assert value(samples, "relay_delivery_attempts_total", status="5xx") == 1
    # and relay's own two events about the flaky one (failing, then recovered): fanned out,
    # delivered to neither (no statements: flag events only; never to the one they are about)
    assert value(samples, "relay_operational_events_total", type="subscription-failing") == 1
    assert value(samples, "relay_operational_events_total", type="subscription-recovered") == 1
    assert value(samples, "relay_fanout_lag_seconds_count") == 5
    assert value(samples, "relay_delivery_latency_seconds_count") == 6
    assert value(samples, "relay_outbox_depth") == 0
    assert value(samples, "relay_due_depth") == 0
    assert value(samples, "relay_dead_deliveries") == 0
    assert value(samples, "relay_workers") >= 1
    ingest = {"method": "POST", "route": "/api/events", "status": "202"}
    assert value(samples, "relay_http_request_duration_seconds_count", **ingest) == 1


def test_relay_serve_with_several_processes_merges_their_metrics(
    settings: Settings, redis_client: Redis, tmp_path: Path
) -> None:
    """`relay serve --workers 2` shares one metrics directory: any scrape counts both."""
    # given
    port = free_port()
    env = {key: value for key, value in os.environ.items() if key != "PROMETHEUS_MULTIPROC_DIR"}
    env |= {
        "RELAY_REDIS_URL": settings.require_redis_url(),
        "RELAY_ADMIN_TOKEN": str(settings.admin_token),
        "RELAY_DATA_DIR": str(tmp_path),
        "RELAY_LOG_LEVEL": "WARNING",
    }
    command = [sys.executable, "-m", "relay.cli", "serve", "--port", str(port), "--workers", "2"]
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
    )
    headers = {"Authorization": f"Bearer {settings.admin_token}"}
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers) as api:
            _wait_until_up(api, process)
            # when: new connections, so both processes get some of them
            for _ in range(20):
                with httpx.Client(base_url=f"http://127.0.0.1:{port}") as one:
                    assert one.get("/healthz").status_code == 200
            scrapes = []
            for _ in range(4):  # new connections again: whichever process answers
                with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers) as one:
                    scrapes.append(scrape(one))
    finally:
        process.terminate()
        process.wait(15)
    # then: every scrape counts all 20, whichever process served them or the scrape
    healthz = {"method": "GET", "route": "/healthz", "status": "200"}
    counts = [value(s, "relay_http_request_duration_seconds_count", **healthz) for s in scrapes]
    assert all(count >= 20 for count in counts), counts
    pids = {path.stem.rsplit("_", 1)[1] for path in (tmp_path / "metrics").glob("*.db")}
    assert len(pids) >= 2, "one process only: nothing to merge"
