"""Outbound webhook HTTP: the only module that POSTs to subscribers.

Every send is bounded: a connect timeout, one total deadline over the whole exchange
(httpx's own timeouts are per read or write, so a receiver trickling a byte a second
would hold a worker forever), at most `delivery_max_response_bytes` of response read,
no redirects, and the destination guard applied when each connection is opened, to the
very addresses connected to (so a DNS answer changed since the subscription was
checked cannot point a delivery at an internal address). Network problems never
raise: they come back as a `SendResult` for `workers.delivery.retry.classify`.
"""

from __future__ import annotations

import email.utils
import math
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

import anyio
import httpx

import relay
from relay.destinations import DestinationError, UnresolvableHostError
from relay.settings import Settings
from workers.connections import deadline, guarded_async_transport, guarded_transport

__all__ = [
    "RECORDED_BODY_BYTES",
    "SendResult",
    "build_async_client",
    "build_client",
    "parse_retry_after",
    "send",
    "send_async",
]

RECORDED_BODY_BYTES = 1024
_CONTENT_TYPE = "application/json"


@dataclass(frozen=True)
class SendResult:
    """What one POST came to; `status_code` is None when no response arrived."""

    status_code: int | None
    duration_ms: float
    response_body: str = ""  # the first RECORDED_BODY_BYTES, for the delivery's record
    retry_after: float | None = None  # seconds, from a Retry-After header
    error: str | None = None
    refused: bool = False  # the destination guard refused the address: never retry


def build_client(settings: Settings) -> httpx.Client:
    """A client for deliveries: explicit timeouts, no redirects, guarded connections."""
    return httpx.Client(
        transport=guarded_transport(settings),
        timeout=_timeout(settings),
        follow_redirects=False,
        trust_env=False,  # a proxy from the environment would bypass the destination guard
        headers=_default_headers(),
    )


def build_async_client(settings: Settings) -> httpx.AsyncClient:
    """The asynchronous twin of `build_client`."""
    return httpx.AsyncClient(
        transport=guarded_async_transport(settings),
        timeout=_timeout(settings),
        follow_redirects=False,
        trust_env=False,
        headers=_default_headers(),
    )


def send(
    client: httpx.Client,
    *,
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    settings: Settings,
) -> SendResult:
    """POST `body` to `url` within `settings.delivery_timeout`; never raises for the network."""
    exchange = _Exchange(settings)
    try:
        with (
            deadline(exchange.deadline),
            client.stream("POST", url, content=body, headers=_headers(headers)) as response,
        ):
            exchange.respond(response)
            for chunk in _raw_chunks(response):
                if exchange.take(chunk):
                    break
    except Exception as exc:  # `fail` keeps network problems, re-raises anything else
        exchange.fail(exc)
    return exchange.result()


async def send_async(
    client: httpx.AsyncClient,
    *,
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    settings: Settings,
) -> SendResult:
    """The asynchronous twin of `send`, cancelled as a whole at the deadline."""
    exchange = _Exchange(settings)
    try:
        with anyio.fail_after(settings.delivery_timeout), deadline(exchange.deadline):
            async with client.stream(
                "POST", url, content=body, headers=_headers(headers)
            ) as response:
                exchange.respond(response)
                async for chunk in _araw_chunks(response):
                    if exchange.take(chunk):
                        break
    except Exception as exc:  # `fail` keeps network problems, re-raises anything else
        exchange.fail(exc)
    return exchange.result()


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


@dataclass
class _Exchange:
    """One send in progress: what has arrived so far, turned into a SendResult at the end."""

    settings: Settings
    started: float = field(default_factory=time.perf_counter)
    deadline: float = 0.0
    status_code: int | None = None
    retry_after: float | None = None
    body: bytearray = field(default_factory=bytearray)
    error: str | None = None
    refused: bool = False

    def __post_init__(self) -> None:
        self.deadline = time.monotonic() + self.settings.delivery_timeout

    def respond(self, response: httpx.Response) -> None:
        self.status_code = response.status_code
        self.retry_after = parse_retry_after(response.headers.get("retry-after"))

    def take(self, chunk: bytes) -> bool:
        """Keep a chunk of the response; True when enough has been read."""
        room = self.settings.delivery_max_response_bytes - len(self.body)
        self.body += chunk[:room]
        if time.monotonic() >= self.deadline:
            self.error = self._cut("timed out reading the response")
            return True
        return len(chunk) >= room

    def fail(self, exc: Exception) -> None:
        if isinstance(exc, UnresolvableHostError):
            self.error = exc.reason  # "cannot resolve ...": DNS may answer next time
        elif isinstance(exc, DestinationError):
            self.error, self.refused = f"destination refused: {exc.reason}", True
        elif isinstance(exc, httpx.InvalidURL | httpx.UnsupportedProtocol):
            self.error, self.refused = f"destination refused: {exc}", True
        elif isinstance(exc, httpx.TimeoutException | TimeoutError):
            self.error = self._cut(f"timed out ({_phase(exc)})")
        elif isinstance(exc, httpx.HTTPError):
            self.error = self._cut(f"{_kind(exc)}: {exc}".rstrip(": "))
        else:
            raise exc

    def result(self) -> SendResult:
        text = bytes(self.body[:RECORDED_BODY_BYTES]).decode("utf-8", errors="replace")
        return SendResult(
            status_code=self.status_code,
            duration_ms=(time.perf_counter() - self.started) * 1000,
            response_body=text,
            retry_after=self.retry_after,
            error=self.error,
            refused=self.refused,
        )

    def _cut(self, what: str) -> str:
        elapsed = time.perf_counter() - self.started
        after = "after the status line, " if self.status_code is not None else ""
        return f"{what}, {after}{elapsed:.2f} s into the exchange"


def _raw_chunks(response: httpx.Response) -> Iterator[bytes]:
    # raw, not decoded: a small compressed answer cannot inflate past the read limit
    if response.is_stream_consumed:  # content given up front, as a MockTransport does
        return iter([response.content])
    return response.iter_raw()


async def _araw_chunks(response: httpx.Response) -> AsyncIterator[bytes]:
    if response.is_stream_consumed:
        yield response.content
        return
    async for chunk in response.aiter_raw():
        yield chunk


def _phase(exc: BaseException) -> str:
    phases = {
        httpx.ConnectTimeout: "connect",
        httpx.WriteTimeout: "write",
        httpx.ReadTimeout: "read",
        httpx.PoolTimeout: "waiting for a free connection",
    }
    return next((name for kind, name in phases.items() if isinstance(exc, kind)), "total")


def _kind(exc: httpx.HTTPError) -> str:
    if isinstance(exc, httpx.ConnectError):
        return "connection failed"
    if isinstance(exc, httpx.ProtocolError):
        return "protocol error"
    return "network error"


def _timeout(settings: Settings) -> httpx.Timeout:
    return httpx.Timeout(settings.delivery_timeout, connect=settings.delivery_connect_timeout)


def _default_headers() -> dict[str, str]:
    # identity: the recorded response stays readable and a small compressed body
    # cannot inflate past the read limit
    return {"user-agent": f"relay/{relay.__version__}", "accept-encoding": "identity"}


def _headers(headers: Mapping[str, str]) -> httpx.Headers:
    merged = httpx.Headers(dict(headers))
    merged["content-type"] = _CONTENT_TYPE
    return merged
