"""Pulling from a hostile or misconfigured Unleash: bounded in memory, time and destination.

Each attack is a real HTTP server on a loopback address; the pull reads it through the
same guarded connections as webhook deliveries.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import psutil
import pytest

from relay.settings import Settings
from relay.store import sources
from relay.store.client import Redis
from workers.pull.pull_sources import pull_all

TOKEN = "*:*.unleash-admin-token"
MIB = 1024 * 1024
HUGE_BYTES = 200 * MIB  # what the hostile server offers to send
BOMB_BYTES = 500 * MIB  # what its bomb inflates to
RSS_GROWTH_LIMIT = 64 * MIB


@dataclass
class Server:
    """A loopback HTTP server answering every GET with `respond`; what it saw and sent."""

    url: str
    paths: list[str] = field(default_factory=list)
    tokens: list[str | None] = field(default_factory=list)
    sent: int = 0  # body bytes written before the client went away


Respond = Callable[[BaseHTTPRequestHandler, Server], None]


@contextmanager
def serve(respond: Respond, host: str = "127.0.0.1") -> Iterator[Server]:
    """Run a threading HTTP server on `host` (a random port) for the block."""
    box: list[Server] = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            server = box[0]
            server.paths.append(self.path)
            server.tokens.append(self.headers.get("Authorization"))
            # the relay hanging up mid-answer is what these tests want
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                respond(self, server)

        def log_message(self, *_: Any) -> None:
            pass

    class Quiet(ThreadingHTTPServer):
        def handle_error(self, *_: Any) -> None:
            pass  # the relay hanging up mid-answer is what these tests want

    httpd = Quiet((host, 0), Handler)
    httpd.daemon_threads = True
    box.append(Server(url=f"http://{host}:{httpd.server_address[1]}"))
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield box[0]
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


def _headers(handler: BaseHTTPRequestHandler, status: int, **headers: str) -> None:
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    for name, value in headers.items():
        handler.send_header(name.replace("_", "-"), value)
    handler.end_headers()


def _write(handler: BaseHTTPRequestHandler, server: Server, data: bytes) -> None:
    handler.wfile.write(data)
    handler.wfile.flush()
    server.sent += len(data)


def huge_page(handler: BaseHTTPRequestHandler, server: Server) -> None:
    """A 200 MB answer, streamed a MiB at a time."""
    _headers(handler, 200, Content_Length=str(HUGE_BYTES))
    chunk = b'{"events": [' + b" " * (MIB - 12)
    for _ in range(HUGE_BYTES // MIB):
        _write(handler, server, chunk)
        chunk = b" " * MIB


@cache
def bomb(encoding: str) -> bytes:
    """500 MB of zeros compressed (about 0.5 MB), built a MiB at a time."""
    wbits = {"gzip": 31, "deflate": 15, "raw-deflate": -15}[encoding]
    compressor = zlib.compressobj(9, zlib.DEFLATED, wbits)
    zeros = bytes(MIB)
    parts = [compressor.compress(zeros) for _ in range(BOMB_BYTES // MIB)]
    return b"".join(parts) + compressor.flush()


def bomb_page(encoding: str) -> Respond:
    def respond(handler: BaseHTTPRequestHandler, server: Server) -> None:
        data = bomb(encoding)
        sent_as = "deflate" if encoding == "raw-deflate" else encoding
        _headers(handler, 200, Content_Encoding=sent_as, Content_Length=str(len(data)))
        _write(handler, server, data)

    return respond


def trickle(handler: BaseHTTPRequestHandler, server: Server) -> None:
    """A byte every quarter second: each read is quick, the whole never ends in time."""
    _headers(handler, 200, Content_Length="40")
    for _ in range(40):
        _write(handler, server, b" ")
        time.sleep(0.25)


@contextmanager
def peak_rss_growth() -> Iterator[Callable[[], int]]:
    """Samples this process's RSS every 2 ms; the callable gives the peak growth so far."""
    process = psutil.Process()
    base = process.memory_info().rss
    peak = [base]
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.002):
            peak[0] = max(peak[0], process.memory_info().rss)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        yield lambda: peak[0] - base
    finally:
        stop.set()
        sampler.join(5)


def _pull_settings(settings: Settings, url: str, **update: Any) -> Settings:
    base = {"unleash_url": url, "unleash_token": TOKEN, "pull_timeout": 5.0}
    return settings.model_copy(update={**base, **update})


def _strict(settings: Settings, url: str, **update: Any) -> Settings:
    """The default guard: no private destinations."""
    return _pull_settings(settings, url, allow_private_destinations=False, **update)


def _last_error(client: Redis, name: str = "unleash") -> str:
    status = sources.pull_status(client, name=name)
    assert status.last_error is not None
    assert status.last_error_at is not None and status.last_pull_at == status.last_error_at
    return status.last_error


@pytest.mark.slow
def test_a_huge_page_is_cut_at_the_cap_without_growing_memory(
    redis_client: Redis, settings: Settings
) -> None:
    """200 MB offered: the pull stops at the page cap, RSS grows far less than the body."""
    with serve(huge_page) as server, peak_rss_growth() as growth:
        results = pull_all(redis_client, settings=_pull_settings(settings, server.url))
        peak = growth()
        time.sleep(0.2)  # the server notices the hang-up
    assert peak < RSS_GROWTH_LIMIT, f"RSS grew {peak / MIB:.0f} MiB"
    assert server.sent < HUGE_BYTES // 2
    assert results == []
    assert "too large" in _last_error(redis_client)


@pytest.mark.slow
@pytest.mark.parametrize("encoding", ["gzip", "deflate", "raw-deflate"])
def test_a_compression_bomb_is_cut_at_the_cap_on_decompressed_bytes(
    redis_client: Redis, settings: Settings, encoding: str
) -> None:
    """0.5 MB that inflates to 500 MB: decompression stops at the cap, memory stays flat."""
    bomb(encoding)  # built before measuring
    with serve(bomb_page(encoding)) as server, peak_rss_growth() as growth:
        results = pull_all(redis_client, settings=_pull_settings(settings, server.url))
        peak = growth()
    assert peak < RSS_GROWTH_LIMIT, f"RSS grew {peak / MIB:.0f} MiB"
    assert results == []
    assert "too large" in _last_error(redis_client)


def test_an_encoding_the_relay_did_not_ask_for_is_refused(
    redis_client: Redis, settings: Settings
) -> None:
    """br (or anything but gzip/deflate) is never decoded: the page is refused."""

    def brotli(handler: BaseHTTPRequestHandler, server: Server) -> None:
        _headers(handler, 200, Content_Encoding="br", Content_Length="4")
        _write(handler, server, b"\x8b\x02\x80{")

    with serve(brotli) as server:
        results = pull_all(redis_client, settings=_pull_settings(settings, server.url))
    assert results == []
    assert "content-encoding 'br'" in _last_error(redis_client)


def test_a_compressed_body_is_bounded_too(redis_client: Redis, settings: Settings) -> None:
    """Compressed bytes that decode to nothing still count: an endless stream is cut."""
    cap = 64 * 1024

    def empty_blocks(handler: BaseHTTPRequestHandler, server: Server) -> None:
        # a gzip header, then stored empty deflate blocks forever (5 bytes, no output each)
        _headers(handler, 200, Content_Encoding="gzip", Content_Length=str(HUGE_BYTES))
        _write(handler, server, b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff")
        for _ in range(HUGE_BYTES // MIB):
            _write(handler, server, b"\x00\x00\x00\xff\xff" * (MIB // 5))

    with serve(empty_blocks) as server:
        update = {"pull_max_page_bytes": cap}
        results = pull_all(redis_client, settings=_pull_settings(settings, server.url, **update))
        time.sleep(0.2)
    assert results == []
    assert server.sent < 32 * MIB
    assert "too large" in _last_error(redis_client)


@pytest.mark.slow
def test_a_trickling_server_hits_the_total_pull_timeout(
    redis_client: Redis, settings: Settings
) -> None:
    """A byte every 0.25 s never trips a per-read timeout; the whole-request deadline does."""
    with serve(trickle) as server:
        started = time.monotonic()
        results = pull_all(
            redis_client, settings=_pull_settings(settings, server.url, pull_timeout=1.5)
        )
        elapsed = time.monotonic() - started
    assert 1.4 <= elapsed < 3.0, elapsed
    assert results == []
    assert "timed out" in _last_error(redis_client)


def test_a_loopback_unleash_url_is_refused_at_connect_under_the_default_guard(
    redis_client: Redis, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """RELAY_UNLEASH_URL on 127.0.0.1 without RELAY_ALLOW_PRIVATE_DESTINATIONS: no request."""
    with serve(huge_page) as server, caplog.at_level(logging.ERROR):
        results = pull_all(redis_client, settings=_strict(settings, server.url))
    assert server.paths == []
    assert results == []
    assert "loopback" in _last_error(redis_client)
    assert "RELAY_UNLEASH_URL" in caplog.text and "loopback" in caplog.text


def test_a_stored_source_now_private_is_refused_at_connect(
    redis_client: Redis, settings: Settings
) -> None:
    """A source stored while private destinations were allowed is not read once they are not."""
    with serve(huge_page) as server:
        sources.add_source(redis_client, name="old", url=server.url, token=TOKEN, settings=settings)
        strict = _strict(settings, server.url, unleash_url=None)
        results = pull_all(redis_client, settings=strict)
    assert server.paths == []
    assert results == []
    assert "destination refused" in _last_error(redis_client, "old")


def test_a_host_name_is_resolved_and_checked_at_connect(
    redis_client: Redis, settings: Settings
) -> None:
    """`localhost` resolves to loopback addresses: refused before any connection."""
    with serve(huge_page) as server:
        port = server.url.rsplit(":", 1)[1]
        results = pull_all(redis_client, settings=_strict(settings, f"http://localhost:{port}"))
    assert server.paths == []
    assert results == []
    assert "loopback" in _last_error(redis_client)


def test_an_allowed_cidr_lets_the_pull_through(redis_client: Redis, settings: Settings) -> None:
    """RELAY_ALLOWED_DESTINATION_CIDRS opens the guard for the pull as for deliveries."""

    def one_page(handler: BaseHTTPRequestHandler, server: Server) -> None:
        data = json.dumps({"events": [], "total": 0}).encode()
        _headers(handler, 200, Content_Length=str(len(data)))
        _write(handler, server, data)

    with serve(one_page) as server:
        strict = _strict(settings, server.url, allowed_destination_cidrs=["127.0.0.1/32"])
        [result] = pull_all(redis_client, settings=strict)
    assert server.tokens == [TOKEN]
    assert result.read == 0
    status = sources.pull_status(redis_client, name="unleash")
    assert status.last_error is None and status.last_success_at is not None


def test_a_redirect_to_a_private_address_is_not_followed(
    redis_client: Redis, settings: Settings
) -> None:
    """An allowed server answering 302 to 127.0.0.2: nothing (no token) reaches the target."""
    with serve(huge_page, host="127.0.0.2") as private:

        def redirect(handler: BaseHTTPRequestHandler, server: Server) -> None:
            location = f"{private.url}/api/admin/search/events"
            _headers(handler, 302, Location=location, Content_Length="0")

        with serve(redirect) as server:
            strict = _strict(settings, server.url, allowed_destination_cidrs=["127.0.0.1/32"])
            results = pull_all(redis_client, settings=strict)
    assert len(server.paths) == 1
    assert private.paths == [] and private.tokens == []
    assert results == []
    assert "302" in _last_error(redis_client)


def test_a_deeply_nested_page_fails_the_pull_instead_of_the_parser(
    redis_client: Redis, settings: Settings
) -> None:
    """A page nested 100,000 levels deep is a pull error, not a RecursionError in the worker."""

    def deep(handler: BaseHTTPRequestHandler, server: Server) -> None:
        data = b'{"events": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
        _headers(handler, 200, Content_Length=str(len(data)))
        _write(handler, server, data)

    with serve(deep) as server:
        results = pull_all(redis_client, settings=_pull_settings(settings, server.url))
    assert results == []
    assert "JSON" in _last_error(redis_client)
