"""How the API is served: uvicorn, with bounds on what a slow or greedy client can hold.

uvicorn (0.55, httptools) bounds none of these: the time a client takes to send its
request line and headers (a connection that sends half a header stays open for good:
3,000 such stayed open, 21,000 took every file descriptor and /healthz stopped
answering), the time it takes to send a body, the bytes of its headers (httptools buffers
any amount: 200 MB of one header were held), and the number of open connections
(`limit_concurrency` only answers 503 once a request's headers are complete, so the
connections that never complete them are not counted out). `EdgeProtocol` adds them:

- headers: `RELAY_HEADER_TIMEOUT` from the connection (or the request's first byte) to
  the end of the headers, and `RELAY_MAX_HEADER_BYTES`; 408 or 431, then closed;
- body: `RELAY_BODY_TIMEOUT` from the end of the headers to the end of the body; 408 and
  closed (a route still waiting for it sees the client gone);
- connections: past `RELAY_MAX_CONNECTIONS`, a new connection closes the one that has
  been idle (between requests, or still sending headers) the longest, so that a crowd of
  slow clients cannot keep a new one out; only when every connection has a request in
  progress is the new one answered 503. The bound is kept under the process's open-files
  limit, whose soft value `serve` raises to the hard one.

`relay serve` and the tests' live server both build their server with `server_config`,
which trusts `X-Forwarded-For` only from `RELAY_FORWARDED_ALLOW_IPS` (none by default).
"""

from __future__ import annotations

import asyncio
import json
import logging
import resource
import socket
import sys
import weakref
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Final

import uvicorn
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.server import ServerState
from uvicorn.supervisors import Multiprocess

from relay.settings import Settings

log = logging.getLogger(__name__)

APP: Final = "relay.api.asgi:app"
# file descriptors kept for everything but client connections: Redis connections, the
# ingest writer's, log and metric files, the listening socket
RESERVED_FDS: Final = 128


@dataclass(frozen=True)
class EdgeLimits:
    """What one client connection may take (from the settings of the same names)."""

    max_connections: int
    max_header_bytes: int
    header_timeout: float
    body_timeout: float


def edge_limits(settings: Settings, *, open_files: int | None = None) -> EdgeLimits:
    """The settings' limits; connections kept under `open_files` (file descriptors)."""
    connections = settings.max_connections
    if open_files is not None and connections > open_files - RESERVED_FDS:
        connections = max(1, open_files - RESERVED_FDS)
        log.warning(
            "RELAY_MAX_CONNECTIONS=%d is over what %d open files allow; using %d",
            settings.max_connections,
            open_files,
            connections,
        )
    return EdgeLimits(
        max_connections=connections,
        max_header_bytes=settings.max_header_bytes,
        header_timeout=settings.header_timeout,
        body_timeout=settings.body_timeout,
    )


def raise_open_files_limit() -> int:
    """Raise this process's soft open-files limit to its hard limit; the soft limit now."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError) as exc:  # a container may refuse it: keep the soft one
            log.warning("could not raise the open-files limit to %d: %s", hard, exc)
    return soft if soft != resource.RLIM_INFINITY else sys.maxsize


class EdgeConfig(uvicorn.Config):
    """uvicorn's configuration with relay's protocol and its limits (picklable: `--workers`
    processes get it as it is)."""

    def __init__(self, app: Any, *, limits: EdgeLimits, **options: Any) -> None:
        super().__init__(app, http=EdgeProtocol, **options)
        self.limits = limits


def server_config(app: Any, settings: Settings, **options: Any) -> EdgeConfig:
    """The uvicorn configuration to serve `app` (an app or `module:attribute`) with."""
    open_files = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    limits = edge_limits(
        settings, open_files=None if open_files == resource.RLIM_INFINITY else open_files
    )
    options.setdefault("log_config", None)  # keep relay's logging (JSON lines off a terminal)
    # uvicorn trusts X-Forwarded-For from 127.0.0.1 unless told: any local client could then
    # pick its address, and with it its failed-authentication count
    trusted = settings.forwarded_allow_ips.strip()
    options.setdefault("proxy_headers", bool(trusted))
    options.setdefault("forwarded_allow_ips", trusted or None)
    options.setdefault("log_level", settings.log_level.lower())
    return EdgeConfig(app, limits=limits, **options)


def serve(settings: Settings, *, host: str, port: int, workers: int, fd: int | None = None) -> None:
    """Run the API (`relay serve`) until stopped; `workers` processes share the socket.
    With `fd`, serve on that inherited listening socket (`relay up` holds it) instead of
    binding `host`:`port`."""
    raise_open_files_limit()
    config = server_config(
        APP, settings, host=host, port=port, workers=workers, timeout_graceful_shutdown=5
    )
    server = uvicorn.Server(config)
    # socket(fileno=) reads the family from the descriptor (uvicorn's own --fd takes every
    # socket for a Unix one, and client addresses would not be read)
    sockets = [socket.socket(fileno=fd)] if fd is not None else None
    if workers > 1:
        Multiprocess(config, sockets=sockets or [config.bind_socket()]).run()
    else:
        server.run(sockets=sockets)
    if workers == 1 and not server.started:
        raise SystemExit(3)  # as uvicorn.run: could not start (the port is taken, ...)


class _Edge:
    """One server's connections as the protocol sees them: which are idle (no request in
    progress; longest idle first), and one sweep that times out the overdue ones.

    A sweep every fraction of a second, rather than a timer per request: arming and
    cancelling two timers per request cost about 3 us, 2 % of a small ingest request.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, limits: EdgeLimits) -> None:
        self.loop = loop
        self.interval = min(SWEEP_S, limits.header_timeout / 4, limits.body_timeout / 4)
        self.idle: OrderedDict[EdgeProtocol, None] = OrderedDict()
        self.open: set[EdgeProtocol] = set()
        self._sweeping = False

    def watch(self, protocol: EdgeProtocol) -> None:
        self.open.add(protocol)
        if not self._sweeping:
            self._sweeping = True
            self.loop.call_later(self.interval, self._sweep)

    def forget(self, protocol: EdgeProtocol) -> None:
        self.open.discard(protocol)
        self.idle.pop(protocol, None)

    def _sweep(self) -> None:
        now = self.loop.time()
        for protocol in [p for p in self.open if p.deadline <= now]:
            protocol.expired()
        if self.open:
            self.loop.call_later(self.interval, self._sweep)
        else:
            self._sweeping = False  # the next connection starts it again


SWEEP_S: Final = 0.5  # at most this late a deadline is noticed
_EDGES: weakref.WeakKeyDictionary[ServerState, _Edge] = weakref.WeakKeyDictionary()
_NO_DEADLINE: Final = float("inf")


class EdgeProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with header and body deadlines, a header size bound
    and a connection bound that evicts idle connections first."""

    def __init__(
        self,
        config: uvicorn.Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        limits = getattr(config, "limits", None)
        self.limits: EdgeLimits = limits if isinstance(limits, EdgeLimits) else _DEFAULTS
        edge = _EDGES.get(server_state)
        if edge is None:
            edge = _EDGES[server_state] = _Edge(self.loop, self.limits)
        self._edge = edge
        self._in_headers = True  # between requests, or reading a request's line and headers
        self._header_bytes = 0
        self._tail = b""  # the last bytes read of the headers: their end may straddle reads
        self.deadline = _NO_DEADLINE  # loop time the headers or the body are due by

    # --- connections ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.limits.max_connections and not self._evict_idle():
            self._answer_and_close(503, "service_unavailable", "too many connections; retry")
            return
        self._edge.idle[self] = None
        self.deadline = self.loop.time() + self.limits.header_timeout
        self._edge.watch(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._edge.forget(self)
        super().connection_lost(exc)

    def _evict_idle(self) -> bool:
        """Close the connection idle the longest; False if none is idle."""
        while self._edge.idle:
            victim, _ = self._edge.idle.popitem(last=False)
            if not victim.transport.is_closing():
                victim.transport.close()
                return True
        return False

    # --- headers ---------------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        # counted before the parser sees them: a whole header block in one read is parsed
        # (and its request started) within this call, so a check after it came too late
        # (40 KB and 100 KB blocks in one write were answered 200)
        if self._in_headers and not self.transport.is_closing():
            self._header_bytes += self._header_part(data)
            if self._header_bytes > self.limits.max_header_bytes:
                self._answer_and_close(
                    431,
                    "request_header_fields_too_large",
                    f"request line and headers over {self.limits.max_header_bytes} bytes",
                )
                return
        super().data_received(data)

    def _header_part(self, data: bytes) -> int:
        """How many bytes of `data` belong to the request line and headers (up to their
        blank line, which may begin in an earlier read)."""
        seen = self._tail + data
        end = seen.find(b"\r\n\r\n")
        self._tail = seen[-3:] if end < 0 else b""
        return len(data) if end < 0 else end + 4 - (len(seen) - len(data))

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self.deadline == _NO_DEADLINE:  # a request on a kept-alive connection: 1st byte
            self.deadline = self.loop.time() + self.limits.header_timeout

    def on_headers_complete(self) -> None:
        self._in_headers = False
        self._header_bytes = 0
        self._tail = b""
        self._edge.idle.pop(self, None)
        self.deadline = self.loop.time() + self.limits.body_timeout
        super().on_headers_complete()

    # --- body and answer ---------------------------------------------------------------------

    def on_message_complete(self) -> None:
        self.deadline = _NO_DEADLINE
        self._in_headers = True
        super().on_message_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # kept alive with nothing pipelined: idle until the next request's first byte
        if self.timeout_keep_alive_task is not None and not self.transport.is_closing():
            self._edge.idle[self] = None

    # --- deadlines ---------------------------------------------------------------------------

    def expired(self) -> None:
        """The headers or the body are overdue: 408 (unless an answer started), closed."""
        self.deadline = _NO_DEADLINE
        if self.transport.is_closing():
            return
        cycle = self.cycle
        if self._in_headers:
            message = f"request headers not received within {self.limits.header_timeout:g}s"
        else:
            message = f"request body not received within {self.limits.body_timeout:g}s"
        if cycle is not None and not self._in_headers:
            # the route may be waiting for the body: it sees the client gone
            cycle.disconnected = True
            cycle.message_event.set()
            if cycle.response_started:
                self.transport.close()
                return
        self._answer_and_close(408, "request_timeout", message)

    def _answer_and_close(self, status: int, code: str, message: str) -> None:
        body = json.dumps({"code": code, "message": message}).encode()
        head = (
            b"content-type: application/json\r\n"
            b"content-length: %d\r\nconnection: close\r\n\r\n" % len(body)
        )
        self.transport.write(STATUS_LINE[status] + head + body)
        self.transport.close()


def _default_limits() -> EdgeLimits:
    fields = Settings.model_fields
    names = ("max_connections", "max_header_bytes", "header_timeout", "body_timeout")
    return EdgeLimits(*(fields[name].default for name in names))


# for a plain uvicorn.Config (the settings' defaults: no environment is read at import)
_DEFAULTS: Final = _default_limits()
