"""Each worker process that runs tasks has its runtime, made at start and closed at exit,
whichever Celery pool runs them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from relay.api.app import create_app
from relay.settings import Settings
from relay.store import heartbeats
from relay.store.client import Redis
from tests import support
from tests.conftest import settings_env

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

POOLS = {
    "threads": ["--pool=threads", "--concurrency=4"],
    "prefork": ["--pool=prefork", "--concurrency=2"],
    "solo": ["--pool=solo"],
}
REPLY_DELAY_S = 1.5  # the receiver holds the send this long: the worker stops meanwhile


@pytest.fixture
def api(settings: Settings, redis_client: Redis) -> Iterator[TestClient]:
    with TestClient(create_app(settings, redis=redis_client)) as client:
        yield client


def _start_worker(settings: Settings, pool: list[str], log: Path) -> subprocess.Popen[bytes]:
    name = f"relay-rt-{uuid.uuid4().hex[:8]}"
    command = [sys.executable, "-m", "celery", "-A", "workers.celery_app", "worker", *pool]
    command += ["--without-gossip", "--without-mingle", "--loglevel=INFO", "-n", f"{name}@%h"]
    env = {**os.environ, **settings_env(settings), "PYTHONUNBUFFERED": "1"}
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    return process


@pytest.mark.parametrize("pool", POOLS, ids=list(POOLS))
def test_a_worker_delivers_and_finishes_its_sends_when_stopped(
    pool: str,
    api: TestClient,
    admin_headers: dict[str, str],
    redis_client: Redis,
    settings: Settings,
    receivers: Callable[[], Any],
    tmp_path: Path,
) -> None:
    """Under each pool an event is delivered, and a send in flight when the worker is
    stopped (SIGTERM) finishes before the process exits: its runtime closed the sender."""
    # given: a worker of this pool, and a receiver that takes 1.5 s to answer
    receiver = receivers()
    receiver.always(200, delay=REPLY_DELAY_S)
    sub_id = support.subscribe_via_api(api, receiver.url, name="rt", headers=admin_headers)
    log = tmp_path / "worker.log"
    process = _start_worker(settings, POOLS[pool], log)
    try:
        support.eventually(lambda: _seen(redis_client), timeout=40, what="the worker's heartbeat")
        # when: an event is posted, and the worker is stopped while its send waits
        support.post_events(api, [support.unleash_event(featureName="rt")], headers=admin_headers)
        receiver.wait_for(1, timeout=30)
        # the leader only, as `relay up`, Docker and Kubernetes stop it: its warm shutdown
        # waits for the task, then stops its pool (a SIGTERM to every pool process at
        # once can kill a child between its task's end and its report of it)
        os.kill(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    # then: the send finished and was recorded before the worker exited, without errors
    output = log.read_text(errors="replace")
    [delivery] = support.deliveries_of(api, sub_id, headers=admin_headers)
    assert delivery["state"] == "delivered", output
    assert process.returncode == 0, output
    assert "Traceback" not in output and "no worker runtime" not in output, output


def _seen(client: Redis) -> Any:
    return heartbeats.workers_seen(client, within_seconds=30)
