"""Outbound webhook HTTP: response handling, limits, deadline, redirects, the connect-time guard."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

import relay
from relay.settings import Settings
from workers.delivery.retry import Outcome, classify
from workers.http import (
    SendResult,
    build_async_client,
    build_client,
    parse_retry_after,
    send,
    send_async,
)

BODY = b'{"id":1,"type":"feature-created"}'
FAST = Settings(allow_private_destinations=True, delivery_timeout=1.0, delivery_connect_timeout=0.5)
STRICT = Settings(
    allow_private_destinations=False, delivery_timeout=1.0, delivery_connect_timeout=0.5
)
TEN_MB = 10 * 1024 * 1024


class Receiver:
    """A real HTTP server on 127.0.0.1 whose paths misbehave in the ways receivers do."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, str], bytes]] = []
        self.written = 0
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.server.block_on_close = False
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def paths(self) -> list[str]:
        return [path for path, _, _ in self.requests]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet."""

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                body = self.rfile.read(length)
                receiver.requests.append((self.path, dict(self.headers.items()), body))
                self.close_connection = True
                # OSError: the client went away, which is what several paths are for
                with contextlib.suppress(OSError):
                    getattr(receiver, "on_" + self.path.strip("/").replace("-", "_"))(self)

        return Handler

    def on_ok(self, handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("content-length", "6")
        handler.end_headers()
        handler.wfile.write(b"thanks")

    def on_target(self, handler: BaseHTTPRequestHandler) -> None:
        self.on_ok(handler)

    def on_redirect(self, handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(302)
        handler.send_header("location", f"{self.url}/target")
        handler.send_header("content-length", "0")
        handler.end_headers()

    def on_big(self, handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("content-length", str(TEN_MB))
        handler.end_headers()
        chunk = b"x" * 65536
        while self.written < TEN_MB:
            handler.wfile.write(chunk)
            self.written += len(chunk)

    def on_trickle_headers(self, handler: BaseHTTPRequestHandler) -> None:
        for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"s" * 200:
            handler.wfile.write(bytes([byte]))
            handler.wfile.flush()
            time.sleep(0.05)

    def on_trickle_body(self, handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("content-length", "200")
        handler.end_headers()
        handler.wfile.flush()
        for _ in range(200):
            handler.wfile.write(b"z")
            handler.wfile.flush()
            time.sleep(0.05)

    def on_hangup(self, handler: BaseHTTPRequestHandler) -> None:
        handler.connection.shutdown(socket.SHUT_RDWR)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.stop()


def post(
    mode: str, url: str, *, settings: Settings = FAST, headers: Mapping[str, str] | None = None
) -> SendResult:
    """One send through a client built for `settings`, sync or async."""
    headers = headers or {}
    if mode == "sync":
        with build_client(settings) as client:
            return send(client, url=url, body=BODY, headers=headers, settings=settings)

    async def run() -> SendResult:
        async with build_async_client(settings) as client:
            return await send_async(client, url=url, body=BODY, headers=headers, settings=settings)

    return asyncio.run(run())


MODES = pytest.mark.parametrize("mode", ["sync", "async"])


@MODES
def test_posts_json_with_our_headers_and_records_the_answer(mode: str, receiver: Receiver) -> None:
    """The body is POSTed as JSON with the caller's headers; the answer is recorded."""
    # when
    result = post(
        mode, f"{receiver.url}/ok", headers={"webhook-id": "dlv_1", "Content-Type": "text/plain"}
    )
    # then
    assert (result.status_code, result.response_body, result.error) == (200, "thanks", None)
    assert classify(result) is Outcome.DELIVERED
    _, headers, body = receiver.requests[0]
    assert body == BODY
    lowered = {name.lower(): value for name, value in headers.items()}
    assert lowered["content-type"] == "application/json"
    assert lowered["webhook-id"] == "dlv_1"
    assert lowered["user-agent"] == f"relay/{relay.__version__}"
    assert 0 < result.duration_ms < 1000


@MODES
def test_reads_at_most_the_response_limit_of_a_huge_answer(mode: str, receiver: Receiver) -> None:
    """A receiver streaming 10 MB is cut after delivery_max_response_bytes, not read to the end."""
    # when
    started = time.monotonic()
    result = post(mode, f"{receiver.url}/big")
    # then
    assert time.monotonic() - started < FAST.delivery_timeout
    assert result.status_code == 200 and result.error is None
    assert result.response_body == "x" * 1024
    time.sleep(0.2)  # let the receiver notice the closed connection
    assert receiver.written < TEN_MB


@MODES
@pytest.mark.parametrize(
    ("path", "status", "outcome", "words"),
    [
        ("/trickle-headers", None, Outcome.RETRY, "timed out"),
        ("/trickle-body", 200, Outcome.DELIVERED, "after the status line"),
    ],
)
def test_total_timeout_cuts_a_trickling_receiver(
    mode: str, path: str, status: int | None, outcome: Outcome, words: str, receiver: Receiver
) -> None:
    """Bytes every 50 ms keep each read alive, but the whole exchange ends at delivery_timeout.

    Cut before the status line, there is no answer (retry); cut after a 2xx status, the
    receiver has accepted the event and only the recorded body is short (delivered).
    """
    # given
    settings = FAST.model_copy(update={"delivery_timeout": 0.6})
    # when
    result = post(mode, receiver.url + path, settings=settings)
    # then
    assert result.error is not None and "timed out" in result.error and words in result.error
    assert 0.55 <= result.duration_ms / 1000 < 0.6 + 1.0  # the receiver would take 10 s
    assert result.status_code == status
    assert classify(result) is outcome


@MODES
def test_redirects_are_not_followed(mode: str, receiver: Receiver) -> None:
    """A 302 is an answer to retry, and its Location is never fetched."""
    result = post(mode, f"{receiver.url}/redirect")
    assert result.status_code == 302
    assert classify(result) is Outcome.RETRY
    assert receiver.paths() == ["/redirect"]


@MODES
def test_closed_port_is_a_connection_error(mode: str) -> None:
    """Nobody listening: an error to retry, not an exception."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = post(mode, f"http://127.0.0.1:{port}/hook")
    assert result.status_code is None
    assert result.error is not None and result.error.startswith("connection failed")
    assert classify(result) is Outcome.RETRY


@MODES
def test_receiver_hanging_up_is_a_protocol_error(mode: str, receiver: Receiver) -> None:
    """A connection closed without an answer is retried."""
    result = post(mode, f"{receiver.url}/hangup")
    assert result.status_code is None
    assert result.error is not None and "protocol error" in result.error
    assert classify(result) is Outcome.RETRY


@MODES
@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_guard_refuses_private_addresses_at_connect_time(
    mode: str, host: str, receiver: Receiver
) -> None:
    """Without allow_private_destinations the connection is never opened: dead, not retried."""
    # given
    url = receiver.url.replace("127.0.0.1", host) + "/ok"
    # when
    result = post(mode, url, settings=STRICT)
    # then
    assert result.refused
    assert result.error is not None and result.error.startswith("destination refused:")
    assert "loopback" in result.error
    assert classify(result) is Outcome.DEAD
    assert receiver.requests == []


@MODES
def test_allowed_cidrs_open_the_guard(mode: str, receiver: Receiver) -> None:
    """An address inside allowed_destination_cidrs is delivered to."""
    settings = STRICT.model_copy(update={"allowed_destination_cidrs": ["127.0.0.0/8", "::1/128"]})
    result = post(mode, f"{receiver.url.replace('127.0.0.1', 'localhost')}/ok", settings=settings)
    assert result.status_code == 200
    assert receiver.paths() == ["/ok"]


@MODES
def test_unresolvable_host_is_retried_not_refused(mode: str) -> None:
    """A name that does not resolve (perhaps for now) is an error to retry."""
    result = post(mode, "http://no-such-host.invalid/hook", settings=STRICT)
    assert not result.refused
    assert result.error is not None and result.error.startswith("cannot resolve")
    assert classify(result) is Outcome.RETRY


@MODES
def test_url_that_is_not_http_is_refused(mode: str) -> None:
    """A stored URL httpx cannot send to is permanent."""
    result = post(mode, "ftp://example.com/hook")
    assert result.refused
    assert classify(result) is Outcome.DEAD


# Response handling through httpx.MockTransport: status, Retry-After, recorded body.


def mock_send(handler: Callable[[httpx.Request], httpx.Response]) -> SendResult:
    with httpx.Client(transport=httpx.MockTransport(handler)) as client:
        return send(
            client, url="https://hooks.example.com/in", body=BODY, headers={}, settings=FAST
        )


def answer(status: int, **headers: str) -> Callable[[httpx.Request], httpx.Response]:
    return lambda request: httpx.Response(status, headers=headers, content=b"nope")


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (200, Outcome.DELIVERED),
        (202, Outcome.DELIVERED),
        (204, Outcome.DELIVERED),
        (410, Outcome.GONE),
        (404, Outcome.RETRY),
        (429, Outcome.RETRY),
        (500, Outcome.RETRY),
        (503, Outcome.RETRY),
        (301, Outcome.RETRY),
        (308, Outcome.RETRY),
    ],
)
def test_status_codes_classify(status: int, outcome: Outcome) -> None:
    """The status code alone decides between delivered, gone and retry."""
    result = mock_send(answer(status))
    assert result.status_code == status and result.error is None
    assert classify(result) is outcome


def http_date(delta: timedelta) -> str:
    return format_datetime(datetime.now(UTC) + delta, usegmt=True)


def test_retry_after_seconds_is_read_from_the_answer() -> None:
    """Retry-After: 120 on a 503 is 120 s."""
    assert mock_send(answer(503, **{"Retry-After": "120"})).retry_after == 120.0


def test_retry_after_http_date_is_seconds_from_now() -> None:
    """Retry-After as an HTTP date is the time left until it."""
    result = mock_send(answer(429, **{"Retry-After": http_date(timedelta(seconds=90))}))
    assert result.retry_after is not None and 85 <= result.retry_after <= 90


def test_retry_after_over_the_cap_is_kept_raw_for_next_delay_to_cap() -> None:
    """A day-long Retry-After is reported as is; next_delay applies retry_after_cap."""
    assert mock_send(answer(503, **{"Retry-After": "86400"})).retry_after == 86400.0


NOW = datetime(2015, 10, 21, 7, 26, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("120", 120.0),
        ("0", 0.0),
        (" 30 ", 30.0),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 90.0),
        ("Wednesday, 21-Oct-15 07:28:00 GMT", 90.0),
        ("Wed Oct 21 07:28:00 2015", 90.0),
        ("Wed, 21 Oct 2015 07:00:00 GMT", 0.0),
        ("-5", None),
        ("1.5", None),
        ("soon", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_retry_after(value: str | None, seconds: float | None) -> None:
    """delay-seconds and the three HTTP date forms parse; past dates are 0; garbage is None."""
    assert parse_retry_after(value, now=NOW) == seconds


def test_recorded_response_body_is_the_first_kib() -> None:
    """The record keeps 1 KiB of the answer, decoded leniently."""
    result = mock_send(lambda request: httpx.Response(500, content=b"\xff" + b"e" * 5000))
    assert len(result.response_body) == 1024
    assert result.response_body.startswith("\ufffdeee")


@pytest.mark.parametrize(
    ("exc", "words"),
    [
        (httpx.ConnectError, "connection failed"),
        (httpx.ConnectTimeout, "timed out (connect)"),
        (httpx.ReadTimeout, "timed out (read)"),
        (httpx.WriteTimeout, "timed out (write)"),
        (httpx.PoolTimeout, "timed out (waiting for a free connection)"),
        (httpx.RemoteProtocolError, "protocol error"),
        (httpx.ReadError, "network error"),
    ],
)
def test_network_exceptions_become_results(exc: type[httpx.TransportError], words: str) -> None:
    """httpx's transport errors come back as an error result, never raised."""

    def fail(request: httpx.Request) -> httpx.Response:
        raise exc("boom", request=request)

    result = mock_send(fail)
    assert result.status_code is None and not result.refused
    assert result.error is not None and result.error.startswith(words)
    assert classify(result) is Outcome.RETRY


def test_async_send_handles_answers_like_sync() -> None:
    """send_async reads status, Retry-After and body the same way."""

    async def run() -> SendResult:
        transport = httpx.MockTransport(answer(503, **{"Retry-After": "7"}))
        async with httpx.AsyncClient(transport=transport) as client:
            return await send_async(
                client, url="https://hooks.example.com/in", body=BODY, headers={}, settings=FAST
            )

    result = asyncio.run(run())
    assert (result.status_code, result.retry_after, result.response_body) == (503, 7.0, "nope")
