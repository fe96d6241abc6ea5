"""The network layer under `workers.http`: guarded connections and a total deadline.

httpx chooses addresses and bounds each socket operation on its own; a delivery needs
two things more, both done here at httpcore's network-backend seam:

- the destination guard at connect time: the host is resolved once, every address is
  vetted by `relay.destinations.resolve_allowed`, and the socket connects to a vetted
  address, never to a name the OS would resolve again;
- one deadline for the whole exchange: every connect, read, write and TLS handshake
  gets at most the time left before `deadline()`'s moment, so slow trickling cannot
  stretch a send past `delivery_timeout`.

Only `workers.http` uses this module.
"""

from __future__ import annotations

import ipaddress
import ssl
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import partial
from typing import Any

import anyio.to_thread
import httpcore
import httpx

from relay.destinations import resolve_allowed
from relay.settings import Settings

__all__ = ["deadline", "guarded_async_transport", "guarded_transport"]

# monotonic moment the current send must end by; per thread / per task
_DEADLINE: ContextVar[float | None] = ContextVar("relay_send_deadline", default=None)

SocketOptions = Iterable[Any] | None


@contextmanager
def deadline(moment: float) -> Iterator[None]:
    """Bound every network operation of the sends inside by `moment` (time.monotonic)."""
    token = _DEADLINE.set(moment)
    try:
        yield
    finally:
        _DEADLINE.reset(token)


def guarded_transport(settings: Settings) -> httpx.HTTPTransport:
    """An httpx transport whose connections go through the guard and the deadline."""
    transport = httpx.HTTPTransport(limits=_limits(settings), trust_env=False)
    # httpx has no public hook for the network backend: swap in a pool built with ours
    transport._pool = httpcore.ConnectionPool(
        network_backend=_GuardedBackend(settings), **_pool_options(settings)
    )
    return transport


def guarded_async_transport(settings: Settings) -> httpx.AsyncHTTPTransport:
    """The asynchronous twin of `guarded_transport`."""
    transport = httpx.AsyncHTTPTransport(limits=_limits(settings), trust_env=False)
    transport._pool = httpcore.AsyncConnectionPool(
        network_backend=_GuardedAsyncBackend(settings), **_pool_options(settings)
    )
    return transport


def _limits(settings: Settings) -> httpx.Limits:
    size = settings.delivery_concurrency
    return httpx.Limits(max_connections=size, max_keepalive_connections=size)


def _pool_options(settings: Settings) -> dict[str, Any]:
    limits = _limits(settings)
    return {
        "ssl_context": httpx.create_ssl_context(verify=True, trust_env=False),
        "max_connections": limits.max_connections,
        "max_keepalive_connections": limits.max_keepalive_connections,
        "keepalive_expiry": limits.keepalive_expiry,
    }


def _time_left(timeout: float | None, expired: type[Exception]) -> float | None:
    """`timeout` shortened to what is left before the deadline; `expired` once it passed."""
    moment = _DEADLINE.get()
    if moment is None:
        return timeout
    left = moment - time.monotonic()
    if left <= 0:
        raise expired("the delivery's total time limit was reached")
    return left if timeout is None else min(timeout, left)


def _addresses(host: str, port: int, settings: Settings) -> list[str]:
    if settings.allow_private_destinations:
        return [host]  # nothing to refuse: let the OS resolve as usual
    return resolve_allowed(host, port, settings=settings)


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


class _GuardedBackend(httpcore.NetworkBackend):
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._inner = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: SocketOptions = None,
    ) -> httpcore.NetworkStream:
        failure: Exception = httpcore.ConnectError(f"no address to connect to for {host}")
        for address in _addresses(host, port, self._settings):
            left = _time_left(timeout, httpcore.ConnectTimeout)
            try:
                stream = self._inner.connect_tcp(address, port, left, local_address, socket_options)
            except httpcore.ConnectError as exc:
                failure = exc  # try the next vetted address, as socket.create_connection does
                continue
            return _DeadlineStream(stream)
        raise failure

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


class _DeadlineStream(httpcore.NetworkStream):
    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, _time_left(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, _time_left(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        left = _time_left(timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(self._inner.start_tls(ssl_context, server_hostname, left))

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _GuardedAsyncBackend(httpcore.AsyncNetworkBackend):
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: SocketOptions = None,
    ) -> httpcore.AsyncNetworkStream:
        resolve = partial(_addresses, host, port, self._settings)
        if self._settings.allow_private_destinations or _is_address(host):
            addresses = resolve()  # no lookup to wait for
        else:
            # getaddrinfo blocks: off the event loop, and abandoned if the send is cancelled
            addresses = await anyio.to_thread.run_sync(resolve, abandon_on_cancel=True)
        failure: Exception = httpcore.ConnectError(f"no address to connect to for {host}")
        for address in addresses:
            left = _time_left(timeout, httpcore.ConnectTimeout)
            try:
                stream = await self._inner.connect_tcp(
                    address, port, left, local_address, socket_options
                )
            except httpcore.ConnectError as exc:
                failure = exc
                continue
            return _AsyncDeadlineStream(stream)
        raise failure

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class _AsyncDeadlineStream(httpcore.AsyncNetworkStream):
    def __init__(self, inner: httpcore.AsyncNetworkStream) -> None:
        self._inner = inner

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return await self._inner.read(max_bytes, _time_left(timeout, httpcore.ReadTimeout))

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        await self._inner.write(buffer, _time_left(timeout, httpcore.WriteTimeout))

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        left = _time_left(timeout, httpcore.ConnectTimeout)
        return _AsyncDeadlineStream(await self._inner.start_tls(ssl_context, server_hostname, left))

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)
