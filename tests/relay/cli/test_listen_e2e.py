"""`relay listen` receiving from a real Celery worker with the destination guard on: the
attempt number across retries (`--status 503`), and deliveries during a flood of idle
connections from another local process.

The module has a Redis and a worker of its own; the retry schedule is short (0.5 s, then
4 s and 8 s), so a retry falls after the listener's READ_TIMEOUT frees a flood's slots.
"""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from relay.cli.embedded_redis import start_redis
from relay.cli.listen import MAX_CONNECTIONS, READ_TIMEOUT
from relay.settings import Settings
from tests import support
from tests.relay.cli.listen_process import ListenProcess, listening
from tests.support import eventually

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ADMIN = {"Authorization": "listen-e2e-admin"}
EVENT = support.unleash_event(
    type="feature-environment-enabled",
    featureName="checkout.v2",
    project="default",
    environment="production",
)
ATTEMPT = re.compile(r"attempt (\d+)")


@pytest.fixture(scope="module")
def e2e(
    tmp_path_factory: pytest.TempPathFactory, start_module_worker: Callable[..., Any]
) -> Iterator[Settings]:
    """Settings of this module's Redis and worker: the guard on, retries 0.5 s, 4 s, 8 s."""
    server = start_redis(tmp_path_factory.mktemp("listen-redis"))
    settings = support.e2e_settings(
        redis_url=server.url,
        admin_token=ADMIN["Authorization"],
        data_dir=tmp_path_factory.mktemp("listen-data"),
        allow_private_destinations=False,
        retry_schedule=[0.5, 4.0, 8.0],
    )
    worker = start_module_worker(settings, beat=True)
    yield settings
    worker.stop()
    server.stop()


@pytest.fixture
def api(e2e: Settings, api_for: Callable[[Settings], TestClient]) -> TestClient:
    return api_for(e2e)


def attempts(listener: ListenProcess) -> list[tuple[int, str]]:
    """(attempt number, the line) of each delivery of EVENT printed so far."""
    found = []
    for line in listener.printed("flag checkout.v2"):
        match = ATTEMPT.search(line)
        assert match is not None, line
        found.append((int(match.group(1)), line))
    return found


def flood(port: int) -> list[socket.socket]:
    """Twice MAX_CONNECTIONS idle connections to the listener, opened one by one."""
    held = []
    for _ in range(MAX_CONNECTIONS * 2):
        held.append(socket.create_connection(("127.0.0.1", port)))
        time.sleep(0.005)  # the listener accepts one connection per loop
    return held


def _closed(connection: socket.socket) -> bool:
    connection.settimeout(0.2)
    try:
        return connection.recv(1) == b""
    except TimeoutError:
        return False


def test_a_503_listener_sees_attempt_1_then_2_both_signed(e2e: Settings, api: TestClient) -> None:
    """`--status 503`: the worker retries, and the listener prints the attempt numbers in
    order, each with "signature ok"."""
    with listening(e2e, "--status", "503") as listener:
        # when
        support.post_events(api, [EVENT], headers=ADMIN)
        # then
        eventually(lambda: len(attempts(listener)) >= 2, 20, what="a second attempt")
        seen = attempts(listener)
        [delivery] = support.deliveries_of(api, listener.sub_id, headers=ADMIN)
    assert [number for number, _ in seen[:2]] == [1, 2]
    assert all("signature ok" in line for _, line in seen)
    assert delivery["attempts"][0]["statusCode"] == 503


def test_a_delivery_is_received_while_a_flood_holds_its_connections(
    e2e: Settings, api: TestClient
) -> None:
    """Another local process opens twice MAX_CONNECTIONS idle connections and holds them:
    each new one closes the longest waiting, and a worker's delivery gets through at its
    first attempt."""
    with listening(e2e) as listener:
        held = flood(listener.port)
        try:
            support.post_events(api, [EVENT], headers=ADMIN)
            eventually(lambda: attempts(listener), READ_TIMEOUT - 2, what="the delivery")
            closed = [connection for connection in held if _closed(connection)]
        finally:
            for connection in held:
                connection.close()
        [(number, line)] = attempts(listener)
    assert number == 1 and "signature ok" in line
    # the oldest were closed to make room; never more than the listener's bound stay open
    assert len(held) - len(closed) <= MAX_CONNECTIONS
    assert held[0] in closed
