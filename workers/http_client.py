"""The relay's only HTTP client: httptools over asyncio streams, for every outbound request.

Webhook POSTs (`LeanClient.send`, on the sender's event loop) and pulls from Unleash
servers (`LeanClient.get`, or `SyncClient` from a synchronous task) go through it.
httpx and httpcore spent 1-2 ms of CPU per async POST in their layers (anyio, pool
bookkeeping, header models); aiohttp behind the same guard costs 1.8-2.1x this client's
CPU per POST (bench/http_client.py, 2026-12-04). This client writes the request itself
(after checking every header as h11 would), parses the answer with httptools (llhttp,
uvicorn's parser: 20 us per exchange where h11's pure-Python state machine took 160 us, a
fifth of a delivery's CPU) and keeps a small keep-alive pool per (scheme, host, port).
Every request is bounded:

- connections go only to addresses vetted by `relay.destinations.resolve_allowed`
  (resolved off the loop, cached for `RESOLVE_TTL` seconds per host and port), so a DNS
  answer changed since the URL was checked cannot point a request at an internal address;
- a connect timeout per address and one total deadline over the whole exchange (a
  receiver trickling a byte a second cannot hold a worker past it);
- no redirects; a POST asks for identity encoding and reads at most
  `delivery_max_response_bytes` (the connection is then dropped, not pooled); a GET hands
  the raw body to its `BodyReader`, which caps and decodes it;
- network and protocol problems come back as a `SendResult`, never raised. A pooled
  connection found dead before any byte of the answer arrived is retried once on a new
  one: deliveries are idempotent by webhook id, and a GET is.
"""

from __future__ import annotations

import asyncio
import email.utils
import ipaddress
import math
import re
import socket
import ssl
import time
from collections import deque
from collections.abc import Coroutine, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import cache, lru_cache
from types import TracebackType
from typing import Any, Protocol, TypeVar
from urllib.parse import quote, urlsplit

import httptools

import relay
from relay.destinations import (
    LOOPBACK_HOSTS,
    DestinationError,
    UnresolvableHostError,
    resolve_allowed,
)
from relay.settings import Settings

__all__ = [
    "RECORDED_BODY_BYTES",
    "RESOLVE_TTL",
    "BodyReader",
    "LeanClient",
    "SendResult",
    "SyncClient",
    "parse_retry_after",
]

RECORDED_BODY_BYTES = 1024

RESOLVE_TTL = 30.0  # seconds a vetted DNS answer is reused for new connections
KEEPALIVE_EXPIRY = 5.0  # idle seconds before a pooled connection is dropped (as httpx)
_READ_SIZE = 65536
_DEFAULT_PORTS = {"http": 80, "https": 443}
_DROPPED = frozenset({"content-length", "transfer-encoding"})
_UNVERIFIED = "https-unverified"  # the pool's scheme for TLS without certificate checks
_LISTENER = "http-listener"  # the pool's scheme for a `relay listen` subscription's loopback
# RFC 9110 field names (tokens) and values (visible characters, spaces and tabs inside,
# obs-text): what h11 accepts. Anything else (a line break) never reaches the wire.
_FIELD_NAME = re.compile(r"[-!#$%&'*+.^_`|~0-9a-zA-Z]+\Z")
_BAD_FIELD_VALUE = re.compile(r"[^\t\x20-\x7e\x80-\xff]|\A[ \t]|[ \t]\Z")

Origin = tuple[str, str, int]  # scheme, host, port
_T = TypeVar("_T")


@dataclass(frozen=True)
class SendResult:
    """What one request came to; `status_code` is None when no response arrived."""

    status_code: int | None
    duration_ms: float
    response_body: str = ""  # a POST's first RECORDED_BODY_BYTES, for the delivery's record
    retry_after: float | None = None  # seconds, from a Retry-After header
    error: str | None = None
    refused: bool = False  # the destination guard refused the address: never retry


class BodyReader(Protocol):
    """Where `LeanClient.get` puts the answer as it arrives. Either method returning True
    means "read no more": the connection is then dropped, not pooled. Neither may raise."""

    def head(self, status: int, headers: Mapping[str, str]) -> bool:
        """The final answer's status and headers (names lower-cased; repeats joined by ", ")."""
        ...

    def feed(self, chunk: bytes) -> bool:
        """The next raw bytes of the body, as received (not decoded)."""
        ...


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds from a Retry-After value (delay-seconds or HTTP-date); None if unusable."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        moment = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    seconds = (moment - (now or datetime.now(UTC))).total_seconds()
    return max(seconds, 0.0) if math.isfinite(seconds) else None


class _Failure(Exception):
    """A send that failed with `message` (`refused`: the guard said no; never retry)."""

    def __init__(self, message: str, *, refused: bool = False, cut: bool = True) -> None:
        super().__init__(message)
        self.message, self.refused, self.cut = message, refused, cut


class _StaleConnection(Exception):
    """A pooled connection died before any byte of the answer: safe to send again."""


@dataclass(frozen=True)
class _Target:
    origin: Origin
    target: bytes  # path and query
    host_header: str


@dataclass
class _Connection:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    idle_since: float = 0.0
    reused: bool = False

    def usable(self, now: float) -> bool:
        return (
            now - self.idle_since < KEEPALIVE_EXPIRY
            and not self.reader.at_eof()
            and not self.writer.transport.is_closing()
        )

    def drop(self) -> None:
        self.writer.transport.abort()


@dataclass
class _Exchange:
    """One request in progress, turned into a SendResult at the end."""

    limit: int
    reader: BodyReader | None = None  # a GET's: takes the body, which `body` never holds
    started: float = field(default_factory=time.perf_counter)
    status_code: int | None = None
    retry_after: float | None = None
    body: bytearray = field(default_factory=bytearray)
    received: bool = False  # any byte of the answer arrived

    def take(self, chunk: bytes) -> bool:
        """Keep a chunk of the body; True when the read limit is reached."""
        room = self.limit - len(self.body)
        self.body += chunk[:room]
        return len(chunk) >= room

    def cut(self, what: str) -> str:
        elapsed = time.perf_counter() - self.started
        after = "after the status line, " if self.status_code is not None else ""
        return f"{what}, {after}{elapsed:.2f} s into the exchange"

    def result(self, error: str | None = None, refused: bool = False) -> SendResult:
        text = bytes(self.body[:RECORDED_BODY_BYTES]).decode("utf-8", errors="replace")
        return SendResult(
            status_code=self.status_code,
            duration_ms=(time.perf_counter() - self.started) * 1000,
            response_body=text,
            retry_after=self.retry_after,
            error=error,
            refused=refused,
        )


class LeanClient:
    """Requests over pooled keep-alive connections; use on one event loop only.

    `timeout` (total, per request) and `connect_timeout` (per address) default to the
    delivery settings; the pull client passes the pull settings.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        timeout: float | None = None,
        connect_timeout: float | None = None,
    ) -> None:
        self._settings = settings
        self._timeout = settings.delivery_timeout if timeout is None else timeout
        self._connect_timeout = (
            settings.delivery_connect_timeout if connect_timeout is None else connect_timeout
        )
        self._idle: dict[Origin, deque[_Connection]] = {}
        self._resolved: dict[tuple[str, int], tuple[float, list[str]]] = {}
        self._next_sweep = time.monotonic() + KEEPALIVE_EXPIRY

    async def send(
        self,
        *,
        url: str,
        body: bytes,
        headers: Mapping[str, str],
        method: str = "POST",
        verify_tls: bool = True,
        local_listener: bool = False,
    ) -> SendResult:
        """Send `body` (JSON unless `headers` give a Content-Type) to `url` within the
        timeout; never raises for the network. `verify_tls=False` accepts any certificate
        (an integration's explicit choice, e.g. Splunk's `skip-ca-verification`).
        `local_listener` lets plain HTTP to a literal loopback address past the guard: the
        caller checked that `url` is its subscription's `relay listen` origin."""
        exchange = _Exchange(self._settings.delivery_max_response_bytes)
        return await self._perform(
            exchange,
            method.encode("ascii"),
            url,
            headers,
            body,
            verify_tls=verify_tls,
            local_listener=local_listener,
        )

    async def get(self, *, url: str, headers: Mapping[str, str], reader: BodyReader) -> SendResult:
        """GET `url` within the timeout, the answer going to `reader` as it arrives (the
        result's `response_body` stays empty); never raises for the network."""
        return await self._perform(_Exchange(0, reader), b"GET", url, headers, b"")

    async def _perform(
        self,
        exchange: _Exchange,
        method: bytes,
        url: str,
        headers: Mapping[str, str],
        body: bytes,
        *,
        verify_tls: bool = True,
        local_listener: bool = False,
    ) -> SendResult:
        try:
            async with asyncio.timeout(self._timeout):
                target = _parse_url(url)
                scheme, host = target.origin[:2]
                # each its own pool: a connection made without checks never serves a send
                # that asked for them
                if not verify_tls and scheme == "https":
                    target = replace(target, origin=(_UNVERIFIED, *target.origin[1:]))
                elif local_listener and scheme == "http" and host in LOOPBACK_HOSTS:
                    target = replace(target, origin=(_LISTENER, *target.origin[1:]))
                request = _request(target, headers, body, method)
                await self._exchange(target, request, exchange)
        except _Failure as failure:
            message = exchange.cut(failure.message) if failure.cut else failure.message
            return exchange.result(message, failure.refused)
        except TimeoutError:
            return exchange.result(exchange.cut("timed out (total)"))
        return exchange.result()

    async def aclose(self) -> None:
        """Close every idle connection."""
        for connections in self._idle.values():
            for connection in connections:
                connection.drop()
        self._idle.clear()

    async def _exchange(self, target: _Target, request: bytes, exchange: _Exchange) -> None:
        connection = self._checkout(target.origin)
        if connection is not None:
            try:
                await self._roundtrip(connection, target.origin, request, exchange)
                return
            except _StaleConnection:
                pass  # the receiver closed it while idle: once more on a new one
        connection = await self._connect(target.origin)
        try:
            await self._roundtrip(connection, target.origin, request, exchange)
        except _StaleConnection as exc:
            raise _Failure(f"protocol error: {exc}") from exc

    async def _roundtrip(
        self, connection: _Connection, origin: Origin, request: bytes, exchange: _Exchange
    ) -> None:
        reusable = False
        try:
            reusable = await _talk(connection, request, exchange)
        finally:
            if reusable:
                self._checkin(origin, connection)
            else:
                connection.drop()

    def _checkout(self, origin: Origin) -> _Connection | None:
        idle = self._idle.get(origin)
        now = time.monotonic()
        while idle:
            connection = idle.pop()  # the most recently used: the least likely to be closed
            if connection.usable(now):
                connection.reused = True
                return connection
            connection.drop()
        return None

    def _checkin(self, origin: Origin, connection: _Connection) -> None:
        now = time.monotonic()
        if now >= self._next_sweep:
            self._sweep(now)
        idle = self._idle.setdefault(origin, deque())
        if len(idle) >= self._settings.delivery_concurrency:
            idle.popleft().drop()
        connection.idle_since = now
        idle.append(connection)

    def _sweep(self, now: float) -> None:
        """Close expired idle connections of every origin: a receiver not sent to again
        would otherwise keep its sockets open for the life of the process."""
        self._next_sweep = now + KEEPALIVE_EXPIRY
        for origin, idle in list(self._idle.items()):
            kept = []
            for connection in idle:
                if connection.usable(now):
                    kept.append(connection)
                else:
                    connection.drop()
            if kept:
                self._idle[origin] = deque(kept)
            else:
                del self._idle[origin]
        self._resolved = {k: v for k, v in self._resolved.items() if v[0] > now}

    async def _connect(self, origin: Origin) -> _Connection:
        scheme, host, port = origin
        tls = scheme in ("https", _UNVERIFIED)
        context = (_ssl_context() if scheme == "https" else _unverified_context()) if tls else None
        # a listener's literal loopback address: nothing to resolve, the guard let it by
        addresses = [host] if scheme == _LISTENER else await self._addresses(host, port)
        failure: _Failure = _Failure(f"connection failed: no address to connect to for {host}")
        for address in addresses:
            try:
                async with asyncio.timeout(self._connect_timeout):
                    reader, writer = await asyncio.open_connection(
                        address,
                        port,
                        ssl=context,
                        server_hostname=host if tls else None,
                        limit=_READ_SIZE,
                    )
            except TimeoutError:
                failure = _Failure("timed out (connect)")
            except socket.gaierror as exc:  # the OS resolved it (no guard): DNS may answer later
                failure = _Failure(f"cannot resolve {host}: {exc}", cut=False)
            except OSError as exc:
                failure = _Failure(f"connection failed: {exc}")
            else:
                return _Connection(reader, writer)
        raise failure

    async def _addresses(self, host: str, port: int) -> list[str]:
        if self._settings.allow_private_destinations:
            return [host]  # nothing to refuse: let the OS resolve as usual
        key = (host, port)
        cached = self._resolved.get(key)
        now = time.monotonic()
        if cached is not None and cached[0] > now:
            return cached[1]
        try:
            if _is_address(host):
                addresses = resolve_allowed(host, port, settings=self._settings)
            else:  # getaddrinfo blocks: off the event loop
                addresses = await asyncio.get_running_loop().run_in_executor(
                    None, lambda: resolve_allowed(host, port, settings=self._settings)
                )
        except UnresolvableHostError as exc:
            raise _Failure(exc.reason, cut=False) from exc  # DNS may answer next time
        except DestinationError as exc:
            raise _Failure(f"destination refused: {exc.reason}", refused=True, cut=False) from exc
        self._resolved[key] = (now + RESOLVE_TTL, addresses)
        return addresses


async def _talk(connection: _Connection, request: bytes, exchange: _Exchange) -> bool:
    """Send the request and read the answer; True when the connection can be pooled."""
    try:
        connection.writer.write(request)
        await connection.writer.drain()
        return await _read_answer(connection, exchange)
    except (OSError, httptools.HttpParserError, _Disconnected) as exc:
        if connection.reused and not exchange.received:
            raise _StaleConnection(str(exc)) from exc
        if isinstance(exc, OSError):
            raise _Failure(f"network error: {exc}") from exc
        raise _Failure(f"protocol error: {exc or type(exc).__name__}") from exc


class _Disconnected(Exception):
    """The receiver closed the connection before the end of its answer."""


class _Answer:
    """httptools' callbacks for one answer: status, Retry-After and the body, up to the limit."""

    def __init__(self, exchange: _Exchange) -> None:
        self.exchange = exchange
        self.parser = httptools.HttpResponseParser(self)
        self.final = False  # the headers of the final (not 1xx) answer were read
        self.framed = False  # its length is known (content-length or chunked)
        self.complete = False
        self.keep_alive = False  # as the final answer's version and headers say
        self.full = False  # the body reached the read limit
        self.extra = False  # more bytes followed the answer: out of step
        self.retry_after: bytes | None = None

    def on_message_begin(self) -> None:
        self.extra = self.extra or self.complete

    def on_header(self, name: bytes, value: bytes) -> None:
        name = name.lower()
        if name == b"retry-after":
            self.retry_after = value
        elif name in (b"content-length", b"transfer-encoding"):
            self.framed = True

    def on_headers_complete(self) -> None:
        status = self.parser.get_status_code()
        if status < 200:  # 1xx: the final answer follows
            self.framed, self.retry_after = False, None
            return
        self.final = True
        self.exchange.status_code = status
        if self.retry_after is not None:
            self.exchange.retry_after = parse_retry_after(self.retry_after.decode("latin-1"))

    def on_body(self, body: bytes) -> None:
        if self.final and not self.full and self.exchange.take(body):
            self.full = True

    def on_message_complete(self) -> None:
        if self.final and not self.complete:
            self.complete = True
            self.keep_alive = self.parser.should_keep_alive()


class _Download(_Answer):
    """A GET's answer: every header kept for its reader, which takes the body too."""

    def __init__(self, exchange: _Exchange, reader: BodyReader) -> None:
        super().__init__(exchange)
        self.reader = reader
        self.headers: dict[str, str] = {}

    def on_header(self, name: bytes, value: bytes) -> None:
        super().on_header(name, value)
        key, text = name.decode("latin-1").lower(), value.decode("latin-1")
        self.headers[key] = f"{self.headers[key]}, {text}" if key in self.headers else text

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        if not self.final:
            self.headers = {}  # a 1xx's headers: the final answer's follow
        elif self.reader.head(self.exchange.status_code or 0, self.headers):
            self.full = True

    def on_body(self, body: bytes) -> None:
        if self.final and not self.full and self.reader.feed(body):
            self.full = True


async def _read_answer(connection: _Connection, exchange: _Exchange) -> bool:
    """Read the answer; True if it ended cleanly on a connection that stays open."""
    reader = exchange.reader
    answer = _Answer(exchange) if reader is None else _Download(exchange, reader)
    while not (answer.complete or answer.full):
        chunk = await connection.reader.read(_READ_SIZE)
        if not chunk:
            if answer.final and not answer.framed:
                return False  # a body delimited by the end of the connection: it ended
            if not exchange.received:
                raise _Disconnected("the receiver disconnected without sending a response")
            raise _Disconnected("the receiver closed the connection")
        exchange.received = True
        try:
            answer.parser.feed_data(chunk)
        except httptools.HttpParserError:
            if not answer.complete:
                raise
            return False  # garbage after a whole answer: keep the answer, not the connection
    if answer.full and not answer.complete:
        return False  # enough read: the rest is never wanted, drop the connection
    return answer.keep_alive and not answer.extra


def _header(headers: Sequence[tuple[bytes, bytes]], name: bytes) -> str | None:
    for key, value in headers:
        if key == name:
            return value.decode("latin-1")
    return None


@lru_cache(maxsize=4096)
def _parse_url(url: str) -> _Target:
    """Origin, request target and Host header of a webhook URL (the same ones come back)."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise _Failure(f"destination refused: not a valid URL: {exc}", refused=True) from exc
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise _Failure(f"destination refused: unsupported URL scheme {scheme!r}", refused=True)
    host = parts.hostname
    if not host:
        raise _Failure("destination refused: the URL has no host", refused=True)
    port = port if port is not None else _DEFAULT_PORTS[scheme]
    shown = f"[{host}]" if ":" in host else host
    host_header = shown if port == _DEFAULT_PORTS[scheme] else f"{shown}:{port}"
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    if not path.isascii():  # what httpx does: percent-encode, leaving the URL's own escapes
        path = quote(path, safe="/?=&%:@!$'()*+,;~")
    return _Target((scheme, host, port), path.encode("ascii"), host_header)


def _request(
    target: _Target, headers: Mapping[str, str], body: bytes, method: bytes = b"POST"
) -> bytes:
    """The request as written to the wire (a POST's body as JSON, a GET without one); a
    header that cannot be sent is a _Failure."""
    merged = {
        "host": target.host_header,
        "user-agent": f"relay/{relay.__version__}",
        # identity: the recorded response stays readable and cannot inflate past the limit
        "accept-encoding": "identity",
    }
    merged.update((name.lower(), value) for name, value in headers.items())
    content_type = merged.pop("content-type", "application/json")
    lines = [method + b" " + target.target + b" HTTP/1.1"]
    try:
        for name, value in merged.items():
            if name in _DROPPED:
                continue
            if not _FIELD_NAME.match(name) or _BAD_FIELD_VALUE.search(value):
                raise ValueError(f"illegal header {name!r}: {value!r}")
            lines.append(f"{name}: {value}".encode("ascii"))
    except (ValueError, UnicodeError) as exc:  # e.g. a newline in a header
        raise _Failure(f"protocol error: invalid request: {exc}", cut=False) from exc
    if method == b"GET":
        return b"\r\n".join(lines) + b"\r\n\r\n"
    if _BAD_FIELD_VALUE.search(content_type) or not content_type.isascii():
        raise _Failure(f"protocol error: invalid content type {content_type!r}", cut=False)
    lines.append(
        b"content-type: %s\r\ncontent-length: %d\r\n\r\n" % (content_type.encode(), len(body))
    )
    return b"\r\n".join(lines) + body


@cache
def _ssl_context() -> ssl.SSLContext:
    return ssl.create_default_context()  # verified certificates and host names


@cache
def _unverified_context() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


class SyncClient:
    """A `LeanClient` for synchronous callers (the pull task): its own event loop, run in
    the calling thread, which must not be running one. Keep-alive lasts until `close`."""

    def __init__(self, settings: Settings, *, timeout: float, connect_timeout: float) -> None:
        self._runner = asyncio.Runner()
        self._client = LeanClient(settings, timeout=timeout, connect_timeout=connect_timeout)

    def get(self, *, url: str, headers: Mapping[str, str], reader: BodyReader) -> SendResult:
        """`LeanClient.get`, waited for."""
        return self._run(self._client.get(url=url, headers=headers, reader=reader))

    def close(self) -> None:
        """Close every connection and the loop."""
        self._run(self._client.aclose())
        self._runner.close()

    def __enter__(self) -> SyncClient:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _run(self, coroutine: Coroutine[Any, Any, _T]) -> _T:
        return self._runner.run(coroutine)
