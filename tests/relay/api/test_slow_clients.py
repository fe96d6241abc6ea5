"""Slow and greedy clients against a real uvicorn server configured as `relay serve` is.

Raw sockets: a client that sends half a header, a body byte by byte, 64 KB of headers,
or more connections than allowed. Limits are small here (20 connections, 1 s for
headers, 2 s for a body) to keep the tests short and light.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import time
from collections.abc import Iterator

import httpx
import pytest

from relay.api.server import RESERVED_FDS, edge_limits
from relay.settings import Settings
from relay.store import tokens
from relay.store.client import Redis
from relay.store.tokens import Role

HEADER_TIMEOUT = 1.0
BODY_TIMEOUT = 2.0
MAX_CONNECTIONS = 20
MAX_HEADER_BYTES = 8192


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The shared test settings with small edge limits (live_api serves with these)."""
    return settings.model_copy(
        update={
            "header_timeout": HEADER_TIMEOUT,
            "body_timeout": BODY_TIMEOUT,
            "max_connections": MAX_CONNECTIONS,
            "max_header_bytes": MAX_HEADER_BYTES,
        }
    )


def _address(base_url: str) -> tuple[str, int]:
    url = httpx.URL(base_url)
    return url.host, url.port or 80


@contextlib.contextmanager
def _connection(base_url: str) -> Iterator[socket.socket]:
    sock = socket.create_connection(_address(base_url), timeout=10)
    try:
        yield sock
    finally:
        sock.close()


def _read_until_closed(sock: socket.socket, timeout: float) -> tuple[bytes, float]:
    """Everything the server sends until it closes the connection; and how long that took.
    Fails if the connection is still open after `timeout`."""
    started = time.monotonic()
    sock.settimeout(timeout)
    received = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            pytest.fail(f"still open after {timeout}s; received {received[:200]!r}")
        except ConnectionResetError:
            break
        if not chunk:
            break
        received += chunk
    return received, time.monotonic() - started


def _status(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else 0


def _healthz_seconds(base_url: str) -> float:
    started = time.monotonic()
    response = httpx.get(f"{base_url}/healthz", timeout=10)
    assert response.status_code == 200, response.text
    return time.monotonic() - started


# --- headers -------------------------------------------------------------------------------


def test_half_a_header_is_answered_408_and_closed(live_api: str) -> None:
    """A client that stops in the middle of its headers is dropped after the header timeout."""
    with _connection(live_api) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: relay\r\nX-Slow: ")
        answer, took = _read_until_closed(sock, timeout=HEADER_TIMEOUT + 4)
    assert _status(answer) == 408, answer
    assert b'"code":"request_timeout"' in answer.replace(b" ", b"")
    assert took < HEADER_TIMEOUT + 2


def test_a_header_trickled_byte_by_byte_is_dropped(live_api: str) -> None:
    """The header timeout is a deadline for the whole header, not for each byte."""
    with _connection(live_api) as sock:
        started = time.monotonic()
        request = b"GET /healthz HTTP/1.1\r\nHost: relay\r\n" + b"X-Slow: " + b"a" * 200
        closed = False
        for byte in request:
            try:
                sock.sendall(bytes([byte]))
            except OSError:
                closed = True
                break
            time.sleep(0.05)
            if time.monotonic() - started > HEADER_TIMEOUT + 3:
                break
        if not closed:
            answer, _ = _read_until_closed(sock, timeout=2)
            assert _status(answer) in (0, 408), answer
    assert time.monotonic() - started < HEADER_TIMEOUT + 3


def test_a_silent_connection_is_closed(live_api: str) -> None:
    """A connection that sends nothing at all is closed after the header timeout."""
    with _connection(live_api) as sock:
        _, took = _read_until_closed(sock, timeout=HEADER_TIMEOUT + 4)
    assert took < HEADER_TIMEOUT + 2


def test_oversized_headers_are_431_and_closed(live_api: str) -> None:
    """Headers past RELAY_MAX_HEADER_BYTES are refused, not buffered."""
    with _connection(live_api) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: relay\r\nX-Big: ")
        with contextlib.suppress(OSError):  # the server may close while this is sent
            for _ in range(64):
                sock.sendall(b"a" * 1024)
        answer, _ = _read_until_closed(sock, timeout=5)
    assert _status(answer) in (431, 0), answer  # 0: reset before the answer was read
    assert _healthz_seconds(live_api) < 1


@pytest.mark.parametrize("size", [MAX_HEADER_BYTES + 100, 40_000, 100_000])
def test_an_oversized_header_block_in_one_write_is_431(live_api: str, size: int) -> None:
    """A whole header block over the limit, sent at once, is refused before it is parsed
    (a check after parsing let 40 KB and 100 KB blocks through with 200)."""
    request = b"GET /healthz HTTP/1.1\r\nHost: relay\r\nX-Big: " + b"a" * size + b"\r\n\r\n"
    with _connection(live_api) as sock:
        with contextlib.suppress(OSError):
            sock.sendall(request)
        answer, _ = _read_until_closed(sock, timeout=5)
    assert _status(answer) in (431, 0), answer


def test_headers_just_under_the_limit_and_pipelined_requests_still_pass(live_api: str) -> None:
    """The blank line that ends the headers may straddle two reads; requests pipelined in
    one write are each counted from their own first byte."""
    head = b"GET /healthz HTTP/1.1\r\nHost: relay\r\nX-Pad: "
    pad = b"a" * (MAX_HEADER_BYTES - len(head) - 200)
    with _connection(live_api) as sock:
        sock.sendall(head + pad + b"\r\n\r")  # the end split across writes
        time.sleep(0.1)
        sock.sendall(b"\n")
        first = sock.recv(65536)
        assert _status(first) == 200, first
        small = b"GET /healthz HTTP/1.1\r\nHost: relay\r\n\r\n"
        sock.sendall(small * 3)
        seen = b""
        deadline = time.monotonic() + 5
        while seen.count(b"HTTP/1.1 200") < 3 and time.monotonic() < deadline:
            seen += sock.recv(65536)
    assert seen.count(b"HTTP/1.1 200") == 3, seen


def test_kept_alive_connections_still_serve_several_requests(live_api: str) -> None:
    """The deadlines leave ordinary keep-alive traffic alone."""
    with httpx.Client(base_url=live_api, timeout=10) as client:
        for _ in range(3):
            assert client.get("/healthz").status_code == 200
            time.sleep(HEADER_TIMEOUT * 0.6)  # idle between requests, under keep-alive's 5 s
        assert client.get("/healthz").status_code == 200


# --- bodies --------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/events", "/api/v2/integrations/webhook"])
def test_a_slow_body_is_answered_408_and_closed(
    live_api: str,
    path: str,
    redis_client: Redis,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An authorised client that stops sending its body is dropped after the body timeout,
    and the route that waited for it logs no error."""
    _, secret = tokens.create_token(redis_client, name="slow", role=Role.WRITER)
    with _connection(live_api) as sock:
        sock.sendall(
            b"POST " + path.encode() + b" HTTP/1.1\r\nHost: relay\r\n"
            b"Authorization: " + secret.encode() + b"\r\nContent-Type: application/json\r\n"
            b"Content-Length: 1000\r\n\r\n" + b'{"name": "'
        )
        answer, took = _read_until_closed(sock, timeout=BODY_TIMEOUT + 4)
    assert _status(answer) == 408, answer
    assert took < BODY_TIMEOUT + 2
    time.sleep(0.2)  # the route's task ends after the connection
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


@pytest.mark.parametrize(
    "path", ["/api/events", "/api/v2/integrations/webhook", "/api/client/metrics"]
)
@pytest.mark.parametrize("token", [b"", b"Authorization: rly_junk\r\n"], ids=["none", "junk"])
def test_a_stranger_announcing_a_big_body_gets_401_before_sending_it(
    live_api: str, path: str, token: bytes
) -> None:
    """Headers announcing 5 MiB and no valid token: 401 at once, the body never awaited."""
    with _connection(live_api) as sock:
        sock.sendall(
            b"POST " + path.encode() + b" HTTP/1.1\r\nHost: relay\r\n" + token + b"Content-Type: "
            b"application/json\r\nContent-Length: 5242880\r\n\r\n"
        )
        answer, took = _read_until_closed(sock, timeout=BODY_TIMEOUT + 4)
    assert _status(answer) == 401, answer
    assert b"connection: close" in answer.lower()
    assert took < 1


# --- connections ---------------------------------------------------------------------------


def test_slow_connections_past_the_limit_do_not_keep_others_out(live_api: str) -> None:
    """Twice RELAY_MAX_CONNECTIONS half-sent requests: the oldest are closed to make room,
    and /healthz answers at once rather than after the header timeout."""
    # given: 40 connections, each with half a request line
    held = [socket.create_connection(_address(live_api), timeout=10) for _ in range(40)]
    try:
        for sock in held:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: ")
        time.sleep(0.3)
        # then: at least the 20 over the limit were closed, and a new client gets in at once
        closed = 0
        for sock in held:
            sock.settimeout(0.05)
            try:
                if sock.recv(1024) == b"":
                    closed += 1
            except TimeoutError:
                pass
            except ConnectionResetError:
                closed += 1
        assert closed >= 40 - MAX_CONNECTIONS
        assert _healthz_seconds(live_api) < 1
    finally:
        for sock in held:
            sock.close()


def test_when_every_connection_is_busy_a_new_one_gets_503(
    live_api: str, admin_headers: dict[str, str]
) -> None:
    """Connections with a request in progress are never closed for a newcomer: it gets 503,
    and the server answers again once the busy ones end (here: their body timeout)."""
    token = admin_headers["Authorization"].encode()
    busy = [
        socket.create_connection(_address(live_api), timeout=10) for _ in range(MAX_CONNECTIONS)
    ]
    try:
        for sock in busy:  # authorised uploads, headers complete, body never finished
            sock.sendall(
                b"POST /api/v2/integrations/webhook HTTP/1.1\r\nHost: relay\r\n"
                b"Authorization: " + token + b"\r\nContent-Length: 100\r\n\r\n{"
            )
        time.sleep(0.3)
        # when
        with _connection(live_api) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: relay\r\n\r\n")
            answer, _ = _read_until_closed(sock, timeout=5)
        # then
        assert _status(answer) == 503, answer
        deadline = time.monotonic() + BODY_TIMEOUT + 5
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{live_api}/healthz", timeout=2).status_code == 200:
                    break
            time.sleep(0.2)
        else:
            pytest.fail("the server did not answer again after the busy uploads timed out")
    finally:
        for sock in busy:
            sock.close()


def test_the_connection_bound_stays_under_the_open_files_limit(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """RELAY_MAX_CONNECTIONS over what the open-files limit allows is lowered, with a warning."""
    wide = settings.model_copy(update={"max_connections": 1000})
    assert edge_limits(wide, open_files=100_000).max_connections == 1000
    assert edge_limits(wide, open_files=300).max_connections == 300 - RESERVED_FDS
    assert "RELAY_MAX_CONNECTIONS=1000" in caplog.text
