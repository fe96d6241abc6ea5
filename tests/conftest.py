"""Shared fixtures: a real Redis (embedded unless RELAY_TEST_REDIS_URL), settings, the app."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis
from fastapi.testclient import TestClient
from redis.backoff import NoBackoff
from redis.retry import Retry

from relay.api.app import create_app
from relay.cli.embedded_redis import free_port, start_redis
from relay.settings import Settings
from relay.store.client import Redis, connect, open_redis
from tests.redis_topology import DataNode, RedisTopology
from tests.support import serve_in_thread

ADMIN_TOKEN = "test-admin-token"
# a copy of ../shared (seeds and Unleash fixtures) so a clone of the repository is self-contained
SHARED = Path(__file__).resolve().parent / "data" / "shared"


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Redis for the whole session; the embedded one unless RELAY_TEST_REDIS_URL is set.

    Under pytest-xdist each worker process has its own session, so its own embedded Redis
    (tmp_path_factory is per worker too); a given Redis is shared, one database per worker.
    """
    given = os.environ.get("RELAY_TEST_REDIS_URL")
    if given:
        yield _database_of_this_worker(given)
        return
    server = start_redis(tmp_path_factory.mktemp("redis"))
    try:
        yield server.url
    finally:
        server.stop()


def _database_of_this_worker(url: str) -> str:
    """`url` with database N for xdist worker gwN (FLUSHDB empties one database only, and
    Celery's fanout channels carry the database number); unchanged outside xdist."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if not worker.startswith("gw"):
        return url
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{int(worker[2:])}"))


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
def api_for() -> Iterator[Callable[[Settings], TestClient]]:
    """Opens the API in-process for given settings, on a client of their Redis; closed after."""
    opened: list[TestClient] = []

    def open_api(settings: Settings) -> TestClient:
        client = TestClient(create_app(settings, redis=connect(settings.require_redis_url())))
        opened.append(client.__enter__())
        return opened[-1]

    yield open_api
    for client in opened:
        client.__exit__(None, None, None)


@pytest.fixture
def client_without_redis(settings: Settings) -> Iterator[TestClient]:
    """The API with a Redis client pointed at a port where nothing listens."""
    down = redis.Redis(port=free_port(), decode_responses=True, retry=Retry(NoBackoff(), 0))
    with TestClient(create_app(settings, redis=down)) as client:
        yield client
    down.close()


@pytest.fixture
def admin_headers() -> dict[str, str]:
    return {"Authorization": ADMIN_TOKEN}


@pytest.fixture
def live_api(settings: Settings, redis_client: Redis) -> Iterator[str]:
    """The API served by uvicorn on 127.0.0.1 in a thread (for real HTTP clients); its base URL."""
    with serve_in_thread(create_app(settings, redis=redis_client), settings) as url:
        yield url


# --- real HTTP receivers and real Celery worker processes (delivery tests) ---------------


@dataclass(frozen=True)
class Received:
    """One request a receiver got; header names lower-case."""

    path: str
    headers: dict[str, str]
    body: bytes
    at: float
    method: str = "POST"


@dataclass(frozen=True)
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b"ok"
    delay: float = 0.0


class _ReceiverServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 512  # a burst of concurrent deliveries must not overflow the backlog


class Receiver:
    """A ThreadingHTTPServer on 127.0.0.1 recording POSTs; scripted replies, then `default`."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.default = Reply()
        self._script: deque[Reply] = deque()
        self._changed = threading.Condition()
        self._server = _ReceiverServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/hook"
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()

    def reply(
        self,
        status: int,
        *,
        headers: dict[str, str] | None = None,
        body: bytes = b"ok",
        delay: float = 0.0,
        times: int = 1,
    ) -> None:
        """Answer the next `times` requests (after those already scripted) like this."""
        with self._changed:
            self._script.extend([Reply(status, headers or {}, body, delay)] * times)

    def always(self, status: int, *, body: bytes = b"ok", delay: float = 0.0) -> None:
        """Answer like this once the scripted replies are used up."""
        self.default = Reply(status, {}, body, delay)

    def wait_for(self, count: int, timeout: float = 20.0) -> list[Received]:
        """The requests received once there are at least `count` (fails after `timeout`)."""
        with self._changed:
            ok = self._changed.wait_for(lambda: len(self.received) >= count, timeout)
            assert ok, f"receiver got {len(self.received)} requests, expected {count}"
            return list(self.received)

    def webhook_ids(self) -> list[str]:
        with self._changed:
            return [r.headers.get("webhook-id", "") for r in self.received]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _record(self, request: Received) -> Reply:
        with self._changed:
            self.received.append(request)
            self._changed.notify_all()
            return self._script.popleft() if self._script else self.default

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                headers = {k.lower(): v for k, v in self.headers.items()}
                request = Received(self.path, headers, body, time.time(), self.command)
                reply = receiver._record(request)
                time.sleep(reply.delay)
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)

            do_PUT = do_PATCH = do_POST  # integrations may PUT or PATCH

            def log_message(self, format: str, *args: object) -> None:
                pass

        return Handler


@pytest.fixture
def receivers() -> Iterator[Callable[[], Receiver]]:
    """A factory of receivers, all closed after the test."""
    made: list[Receiver] = []

    def make() -> Receiver:
        made.append(Receiver())
        return made[-1]

    yield make
    for receiver in made:
        receiver.close()


def settings_env(settings: Settings) -> dict[str, str]:
    """`RELAY_*` variables that make a child process build the same settings."""
    env: dict[str, str] = {}
    for name, value in settings.model_dump().items():
        if value is None:
            continue
        text = ",".join(str(v) for v in value) if isinstance(value, list) else str(value)
        env[f"RELAY_{name.upper()}"] = text
    return env


@dataclass
class WorkerProcess:
    """`celery -A workers.celery_app worker` (with beat) in its own process group."""

    process: subprocess.Popen[bytes]
    log: Path

    def kill(self) -> None:
        """SIGKILL the worker and its children (beat) at once."""
        self._signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self, timeout: float = 15.0) -> None:
        self._signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def _signal(self, sig: signal.Signals) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, sig)


class WorkerLauncher:
    """Starts real Celery worker processes for `settings` and stops them all at the end."""

    def __init__(self, tmp_path_factory: pytest.TempPathFactory) -> None:
        self._tmp = tmp_path_factory
        self.started: list[WorkerProcess] = []

    def __call__(
        self,
        settings: Settings,
        *,
        beat: bool = True,
        timeout: float = 40.0,
        env: dict[str, str] | None = None,
    ) -> WorkerProcess:
        """Start one (with beat unless told otherwise); returns once its heartbeat is seen."""
        from workers.celery_app import worker_args

        workdir = self._tmp.mktemp("worker")
        name = f"relay-test-{uuid.uuid4().hex[:8]}"
        command = [sys.executable, "-m", "celery", "-A", "workers.celery_app"]
        command += worker_args(settings, beat=beat)
        command += ["-n", f"{name}@%h", "-s", str(workdir / "beat-schedule")]
        env = {**os.environ, **settings_env(settings), "PYTHONUNBUFFERED": "1", **(env or {})}
        log = workdir / "worker.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        worker = WorkerProcess(process, log)
        self.started.append(worker)
        _wait_for_heartbeat(settings, name, worker, timeout)
        return worker

    def stop_all(self) -> None:
        for worker in self.started:
            worker.stop()


@pytest.fixture
def start_worker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WorkerLauncher]:
    """Start real Celery worker processes; they are stopped when the test ends, so no
    worker outlives its test and consumes the next test's tasks."""
    launcher = WorkerLauncher(tmp_path_factory)
    yield launcher
    launcher.stop_all()


@pytest.fixture(scope="module")
def start_module_worker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WorkerLauncher]:
    """`start_worker` for module-scoped fixtures: stopped when the module's tests end."""
    launcher = WorkerLauncher(tmp_path_factory)
    yield launcher
    launcher.stop_all()


def _wait_for_heartbeat(
    settings: Settings, name: str, worker: WorkerProcess, timeout: float
) -> None:
    from relay.store import keys

    client = open_redis(settings)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            assert worker.process.poll() is None, f"worker exited:\n{worker.output()}"
            with contextlib.suppress(redis.RedisError):
                if any(m.startswith(f"{name}@") for m in client.zrange(keys.WORKERS, 0, -1)):
                    return
            time.sleep(0.1)
    finally:
        client.close()
    worker.stop()
    raise AssertionError(f"worker not ready in {timeout}s:\n{worker.output()}")


# --- a primary with a replica (the write concern's tests) ----------------------------------
# (a module may define its own `topology`, as tests/test_redis_topology.py does)


@pytest.fixture(scope="module")
def topology(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisTopology]:
    """A primary, one replica and 3 sentinels (the harness needs a quorum of them), shared
    by the module: starting it takes seconds."""
    with RedisTopology(tmp_path_factory.mktemp("topology"), replicas=1) as topology:
        yield topology


@pytest.fixture
def replica(topology: RedisTopology) -> DataNode:
    """The replica, running and linked to the primary (a test before may have stopped it),
    on an empty database."""
    [node] = [node for node in topology.nodes if node is not topology.primary()]
    if not node.running:
        topology.start(node)
    topology.wait_until_linked(node)
    with topology.primary().client() as primary:
        primary.flushdb()
        assert primary.wait(1, 10_000) == 1  # the replica is empty too
    return node
