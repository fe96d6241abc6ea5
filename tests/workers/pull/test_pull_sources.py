"""Pulling an Unleash server's event search: what its webhook dropped is recorded, once."""

from __future__ import annotations

import importlib
import json
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient

from relay import tasks
from relay.settings import Settings
from relay.store import events, keys, locks, sources
from relay.store.client import Redis
from workers.celery_app import TASK_MODULES, app
from workers.pull.pull_sources import OVERLAP, PAGE_SIZE, pull_all

FIXTURE = (
    Path(__file__).resolve().parents[2]
    / "data"
    / "shared"
    / "fixtures"
    / "unleash"
    / "unleash-8.2.0-events-sample.jsonl"
)
TOKEN = "*:*.unleash-admin-token"


@dataclass
class FakeUnleash:
    """Unleash's `/api/admin/search/events`: newest first, `offset`/`limit`, `{events, total}`."""

    url: str = ""
    events: list[dict[str, Any]] = field(default_factory=list)  # oldest first
    offsets: list[int] = field(default_factory=list)  # of every search request, in order
    status: int = 200
    delay: float = 0.0
    send_total: bool = True
    encoding: str = "identity"  # gzip, deflate (zlib) or raw-deflate, as servers send them
    accept_encodings: list[str | None] = field(default_factory=list)  # of every search request

    def search(self, offset: int, limit: int) -> dict[str, Any]:
        newest_first = self.events[::-1]
        page: dict[str, Any] = {"events": newest_first[offset : offset + limit]}
        if self.send_total:
            page["total"] = len(newest_first)
        return page


def _handler(fake: FakeUnleash) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            query = parse_qs(parts.query)
            if parts.path != "/api/admin/search/events":
                self._answer(404, {"message": "not found"})
            elif self.headers.get("Authorization") != TOKEN or fake.status == 401:
                self._answer(401, {"message": "unauthorized"})
            else:
                offset, limit = int(query["offset"][0]), int(query["limit"][0])
                fake.offsets.append(offset)
                fake.accept_encodings.append(self.headers.get("Accept-Encoding"))
                time.sleep(fake.delay)
                self._answer(fake.status, fake.search(offset, limit))

        def _answer(self, status: int, body: dict[str, Any]) -> None:
            data = _encode(json.dumps(body).encode(), fake.encoding)
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            if fake.encoding != "identity":
                self.send_header("Content-Encoding", fake.encoding.removeprefix("raw-"))
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *_: Any) -> None:
            pass

    return Handler


def _encode(data: bytes, encoding: str) -> bytes:
    if encoding == "identity":
        return data
    wbits = {"gzip": 31, "deflate": 15, "raw-deflate": -15}[encoding]
    compressor = zlib.compressobj(6, zlib.DEFLATED, wbits)
    return compressor.compress(data) + compressor.flush()


@pytest.fixture
def fake_unleash() -> Iterator[FakeUnleash]:
    """A fake Unleash on 127.0.0.1 serving the Unleash 8.2 fixture events."""
    fake = FakeUnleash(events=[json.loads(line) for line in FIXTURE.read_text().splitlines()])
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield fake
    server.shutdown()
    server.server_close()
    thread.join(5)


@pytest.fixture
def pull_settings(settings: Settings, fake_unleash: FakeUnleash) -> Settings:
    """Settings naming the fake as the implicit `unleash` source, with short timeouts."""
    return settings.model_copy(
        update={
            "unleash_url": fake_unleash.url,
            "unleash_token": TOKEN,
            "pull_timeout": 5.0,
            "pull_connect_timeout": 2.0,
        }
    )


def _producer_ids(client: Redis, source: str = "unleash") -> list[Any]:
    ids = [int(m) for m in client.zrange(keys.EVENTS_ALL, 0, -1)]
    recorded = events.get_events(client, ids=ids)
    return sorted(e["producerId"] for e in recorded if e is not None and e["source"] == source)


def _more_events(fake: FakeUnleash, count: int) -> None:
    template = fake.events[-1]
    start = fake.events[-1]["id"] + 1
    fake.events.extend({**template, "id": n} for n in range(start, start + count))


def test_a_pull_records_what_the_webhook_dropped_exactly_once(
    app_client: TestClient,
    admin_headers: dict[str, str],
    redis_client: Redis,
    fake_unleash: FakeUnleash,
    pull_settings: Settings,
) -> None:
    """The webhook delivered some events; after a pull every fixture event is there once."""
    # given: Unleash's webhook addon delivered only every third event
    delivered = fake_unleash.events[::3]
    webhook_ids = {}
    for event in delivered:
        response = app_client.post("/api/events?source=unleash", json=event, headers=admin_headers)
        assert response.status_code == 202
        webhook_ids[event["id"]] = response.json()["ids"][0]
    # when
    [result] = pull_all(redis_client, settings=pull_settings)
    # then
    all_ids = [e["id"] for e in fake_unleash.events]
    assert _producer_ids(redis_client) == all_ids
    assert result.recorded == len(all_ids) - len(delivered)
    assert result.cursor == max(all_ids)
    for producer_id, relay_id in webhook_ids.items():
        [stored] = events.get_events(redis_client, ids=[relay_id])
        assert stored is not None and stored["producerId"] == producer_id
    pulled = events.get_events(
        redis_client, ids=[int(i) for i in redis_client.zrange(keys.EVENTS_ALL, 0, -1)]
    )
    by_producer = {e["producerId"]: e for e in pulled if e is not None}
    for original in fake_unleash.events:
        relay_id = by_producer[original["id"]]["id"]
        assert by_producer[original["id"]] == {
            **original,
            "id": relay_id,
            "producerId": original["id"],
            "source": "unleash",
        }


def test_pulled_events_are_recorded_oldest_first_and_sent_to_fanout(
    redis_client: Redis, pull_settings: Settings, fake_unleash: FakeUnleash
) -> None:
    """Relay ids follow the producer's order, and new events enter the outbox."""
    pull_all(redis_client, settings=pull_settings)
    ids = [int(i) for i in redis_client.zrange(keys.EVENTS_ALL, 0, -1)]
    producer_order = [e and e["producerId"] for e in events.get_events(redis_client, ids=ids)]
    assert producer_order == [e["id"] for e in fake_unleash.events]
    assert sorted(events.outbox_older_than(redis_client, age_ms=0)) == ids


def test_a_second_pull_reads_only_from_the_newest_page(
    redis_client: Redis, pull_settings: Settings, fake_unleash: FakeUnleash
) -> None:
    """The cursor stops a pull at what it has seen (minus a small overlap)."""
    # given: more events than a page plus the overlap, all pulled
    _more_events(fake_unleash, PAGE_SIZE + OVERLAP + 100)
    pull_all(redis_client, settings=pull_settings)
    assert fake_unleash.offsets == [0, PAGE_SIZE, 2 * PAGE_SIZE]
    fake_unleash.offsets.clear()
    # when
    _more_events(fake_unleash, 5)
    [result] = pull_all(redis_client, settings=pull_settings)
    # then
    assert fake_unleash.offsets == [0]
    assert result.recorded == 5
    assert result.cursor == fake_unleash.events[-1]["id"]
    assert _producer_ids(redis_client) == [e["id"] for e in fake_unleash.events]


def test_an_event_committed_late_below_the_cursor_is_still_found(
    redis_client: Redis, pull_settings: Settings, fake_unleash: FakeUnleash
) -> None:
    """Unleash may commit id 20 after id 27 is visible: the overlap re-reads and finds it."""
    # given
    late = next(e for e in fake_unleash.events if e["id"] == 20)
    fake_unleash.events.remove(late)
    pull_all(redis_client, settings=pull_settings)
    # when
    fake_unleash.events.append(late)
    [result] = pull_all(redis_client, settings=pull_settings)
    # then
    assert result.recorded == 1
    assert 20 in _producer_ids(redis_client)


def test_without_a_total_the_pull_reads_until_an_empty_page(
    redis_client: Redis, pull_settings: Settings, fake_unleash: FakeUnleash
) -> None:
    """A search answer without `total` is read page by page to the end."""
    fake_unleash.send_total = False
    _more_events(fake_unleash, PAGE_SIZE)
    pull_all(redis_client, settings=pull_settings)
    assert fake_unleash.offsets == [0, PAGE_SIZE, len(fake_unleash.events)]
    assert _producer_ids(redis_client) == [e["id"] for e in fake_unleash.events]


def test_a_source_being_pulled_elsewhere_is_skipped(
    redis_client: Redis, pull_settings: Settings, fake_unleash: FakeUnleash
) -> None:
    """Another worker holds the source's lock: this one records nothing and says so."""
    token = locks.acquire(redis_client, name="pull:unleash", ttl_ms=10_000)
    assert token is not None
    [result] = pull_all(redis_client, settings=pull_settings)
    assert result.locked_out
    assert fake_unleash.offsets == []
    assert _producer_ids(redis_client) == []


def test_two_workers_pulling_at_once_record_each_event_once(
    redis_client: Redis, pull_settings: Settings, fake_unleash: FakeUnleash
) -> None:
    """Racing beat ticks on two workers: one pulls, the other is locked out."""
    fake_unleash.delay = 0.3
    with ThreadPoolExecutor(2) as pool:
        results = [
            r
            for rs in pool.map(lambda _: pull_all(redis_client, settings=pull_settings), range(2))
            for r in rs
        ]
    assert sorted(r.locked_out for r in results) == [False, True]
    assert _producer_ids(redis_client) == [e["id"] for e in fake_unleash.events]


def test_an_unreachable_or_refusing_source_fails_alone(
    redis_client: Redis,
    pull_settings: Settings,
    fake_unleash: FakeUnleash,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A 401 from one source is logged; the next source is still pulled; no cursor moves."""
    # given
    for name, url, token in [
        ("dead", "http://127.0.0.1:9", "t"),
        ("refusing", fake_unleash.url, "wrong"),
        ("zz-good", fake_unleash.url, TOKEN),
    ]:
        sources.add_source(redis_client, name=name, url=url, token=token, settings=pull_settings)
    # when
    results = pull_all(
        redis_client, settings=pull_settings.model_copy(update={"unleash_url": None})
    )
    # then
    assert [r.source for r in results] == ["zz-good"]
    assert "refusing" in caplog.text and "401" in caplog.text
    assert "dead" in caplog.text
    assert sources.get_cursor(redis_client, name="refusing") is None
    assert _producer_ids(redis_client, "zz-good") == [e["id"] for e in fake_unleash.events]
    # and each source's status says how its pull went
    refusing = sources.pull_status(redis_client, name="refusing")
    assert refusing.last_error is not None and "answered 401" in refusing.last_error
    assert "unauthorized" in refusing.last_error
    assert sources.pull_status(redis_client, name="dead").last_error is not None
    good = sources.pull_status(redis_client, name="zz-good")
    assert good.last_error is None and good.last_success_at is not None


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "raw-deflate"])
def test_a_compressed_feed_is_read(
    redis_client: Redis, pull_settings: Settings, fake_unleash: FakeUnleash, encoding: str
) -> None:
    """relay asks for gzip or deflate, and reads each (zlib-wrapped or raw deflate)."""
    fake_unleash.encoding = encoding
    _more_events(fake_unleash, PAGE_SIZE)
    [result] = pull_all(redis_client, settings=pull_settings)
    assert set(fake_unleash.accept_encodings) == {"gzip, deflate"}
    assert result.recorded == len(fake_unleash.events)
    assert _producer_ids(redis_client) == [e["id"] for e in fake_unleash.events]


def test_an_invalid_event_in_the_feed_is_skipped(
    redis_client: Redis, pull_settings: Settings, fake_unleash: FakeUnleash
) -> None:
    """An event relay cannot accept is logged and counted; the rest are recorded."""
    fake_unleash.events[5] = {**fake_unleash.events[5], "createdAt": "not a time"}
    [result] = pull_all(redis_client, settings=pull_settings)
    assert result.invalid == 1
    assert len(_producer_ids(redis_client)) == len(fake_unleash.events) - 1


def test_events_older_than_the_retention_window_are_not_pulled(
    redis_client: Redis, pull_settings: Settings, fake_unleash: FakeUnleash
) -> None:
    """A first pull of a long-lived Unleash stops at the retention horizon."""
    for event in fake_unleash.events[:10]:
        event["createdAt"] = "2001-01-01T00:00:00.000Z"
    [result] = pull_all(redis_client, settings=pull_settings)
    assert _producer_ids(redis_client) == [e["id"] for e in fake_unleash.events[10:]]
    assert result.cursor == fake_unleash.events[-1]["id"]


def test_the_pull_and_retention_tasks_are_registered_by_name() -> None:
    """Beat schedules them by these names; the worker loads workers.tasks (TASK_MODULES)."""
    importlib.import_module(TASK_MODULES[0])
    assert TASK_MODULES == ["workers.tasks"]
    assert tasks.PULL_SOURCES in app.tasks
    assert tasks.RETENTION in app.tasks


@pytest.mark.e2e
def test_a_worker_with_beat_pulls_the_configured_unleash(
    redis_client: Redis,
    pull_settings: Settings,
    fake_unleash: FakeUnleash,
    start_worker: Callable[..., Any],
) -> None:
    """A real worker process pulls on the beat schedule, from RELAY_UNLEASH_URL/TOKEN."""
    # given
    config = pull_settings.model_copy(update={"poll_interval": 1.0})
    expected = [e["id"] for e in fake_unleash.events]
    # when
    worker = start_worker(config)
    try:
        deadline = time.monotonic() + 30
        while _producer_ids(redis_client) != expected and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        worker.stop()  # its beat would go on pulling, and working for other tests
    # then
    assert _producer_ids(redis_client) == expected, worker.output()
    assert sources.get_cursor(redis_client, name="unleash") == max(expected)
