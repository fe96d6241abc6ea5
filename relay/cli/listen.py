"""`relay listen`: a receiver on this machine that prints every delivery it gets.

It binds 127.0.0.1:PORT, creates a `webhook` subscription pointing at itself (or takes
back the one an earlier `relay listen` on that port left), and prints one line per
delivery: the event's type, flag, project/environment, the attempt number, and whether
both signatures (Standard Webhooks' `webhook-signature` and LaunchDarkly's
`X-LD-Signature`) verify with the subscription's secret. Ctrl-C deletes the subscription.

The subscription is marked as this listener's (`local_listener`, shown in `_status`): the
destination guard lets its deliveries reach this loopback port and nothing else, rather
than being turned off. The mark is made here, with the Redis credentials of an operator;
the API cannot set it. While it runs the listener refreshes a heartbeat; the sweep deletes
the subscription of a listener killed before it could (relay/store/listeners.py).

Deliveries come from the workers, so they reach a listener on the workers' machine:
with `relay up` that is this one.
"""

from __future__ import annotations

import hmac
import json
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, replace
from datetime import datetime
from functools import partial
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TextIO

from relay.clock import now_ms
from relay.destinations import listener_origin
from relay.observability.logs import printable
from relay.settings import Settings
from relay.store import listeners, subscriptions
from relay.store.client import Redis
from relay.store.subscriptions import SubscriptionRecord
from relay.subscriptions.config import INTEGRATION_KEY
from relay.subscriptions.input import validate_subscription
from relay.subscriptions.models import SubscriptionPost
from workers.delivery import activity, signing
from workers.delivery.payloads import ATTEMPT_HEADER

DEFAULT_PORT = 9876
HOST = "127.0.0.1"
MAX_BODY = 8 * 1024 * 1024  # bytes of one delivery's body; 413 beyond
MAX_CONNECTIONS = 64  # open at once; a new one past it closes the longest waiting
READ_TIMEOUT = 10.0  # seconds a connection may take to send a request
TIMESTAMP_TOLERANCE = 5 * 60  # seconds, as Standard Webhooks' verifiers allow
_SIGNATURE_HEADERS = ("webhook-signature", "X-LD-Signature")


class ListenError(Exception):
    """`relay listen` cannot start (the port is taken, the policy is invalid)."""


@dataclass(frozen=True)
class Listening:
    """The subscription a listener delivers to, and whether this run created it."""

    record: SubscriptionRecord
    created: bool


def run_listen(
    client: Redis,
    settings: Settings,
    *,
    port: int,
    policies: list[str],
    status: int = 200,
    out: TextIO = sys.stdout,
) -> None:
    """Listen until Ctrl-C (or SIGTERM), printing each delivery; then delete the subscription."""
    server = _bind(port)
    origin = listener_origin(HOST, server.server_address[1])
    try:
        listening = take_subscription(client, settings, origin=origin, policies=policies)
    except BaseException:
        server.server_close()
        raise
    server.on_delivery = partial(_print, out, secrets=_Secrets(client, listening.record))
    server.answer = status
    stopped = threading.Event()
    serving = threading.Thread(target=server.serve_forever, daemon=True)
    try:
        # a Ctrl-C (or SIGTERM) from here on, however early, ends in the cleanup below
        with _stop_on_sigterm(), suppress(KeyboardInterrupt):
            threading.Thread(
                target=_keep_alive, args=(client, listening.record.id, stopped, out), daemon=True
            ).start()
            serving.start()
            _say_ready(out, listening, origin, settings)
            while serving.is_alive() and not stopped.wait(0.5):
                pass
    finally:
        stopped.set()
        if serving.is_alive():
            server.shutdown()  # waits for serve_forever: only once it runs
        server.server_close()
        _remove(client, listening.record, out)


def take_subscription(
    client: Redis, settings: Settings, *, origin: str, policies: list[str]
) -> Listening:
    """The subscription an earlier listener at `origin` left, its policy set to `policies`
    (none: every event) and turned on, else a new one; registered as this listener's."""
    statements = [{"effect": "allow", "resources": policies, "actions": ["*"]}] if policies else []
    valid = validate_subscription(
        SubscriptionPost.model_validate(
            {
                "name": f"relay listen :{origin.rsplit(':', 1)[1]}",
                "config": {"url": f"{origin}/"},
                "statements": statements,
                "on": True,
            }
        ),
        stored_config=None,
        settings=settings,
        local_listener=origin,
    )

    def listen_again(current: SubscriptionRecord) -> SubscriptionRecord:
        return replace(current, statements=valid.statements, on=True)

    for earlier in listeners.listening_at(client, origin=origin):
        # alive first: the sweep must not take it between the change and the heartbeat
        listeners.register(client, sub_id=earlier.id, now_ms=now_ms())
        taken = subscriptions.update_subscription(
            client,
            sub_id=earlier.id,
            change=listen_again,
            max_entries=settings.max_total_policy_entries,
        )
        if taken is not None and taken.local_listener == origin:
            return Listening(taken, created=False)
        listeners.forget(client, sub_id=earlier.id)
    record = subscriptions.create_subscription(
        client,
        integration_key=INTEGRATION_KEY,
        name=valid.name,
        config=valid.config,
        statements=valid.statements,
        on=True,
        tags=["relay-listen"],
        max_count=settings.max_subscriptions,
        max_entries=settings.max_total_policy_entries,
        local_listener=origin,
    )
    listeners.register(client, sub_id=record.id, now_ms=now_ms())
    return Listening(record, created=True)


# --- the receiver ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Delivery:
    """One request the listener received."""

    headers: Mapping[str, str]  # names lower-cased
    body: bytes
    received_at: float


class _Server(ThreadingHTTPServer):
    """A thread per connection, at most MAX_CONNECTIONS. When they are all open, a new one
    closes the one that has waited longest for a request (idle keep-alive, or a client
    still trickling its request in): a local process holding connections open cannot
    keep the workers' deliveries out. A connection whose request is being printed and
    answered is never the one closed."""

    daemon_threads = True
    on_delivery: Callable[[Delivery], None]
    answer: int = 200

    def __init__(self, port: int) -> None:
        self._lock = threading.Lock()
        # each open connection, and since when it waits for a request (None: busy)
        self._waiting: dict[socket.socket, float | None] = {}
        super().__init__((HOST, port), _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._lock:
            if len(self._waiting) >= MAX_CONNECTIONS and not self._close_longest_waiting():
                self.shutdown_request(request)  # every one of them is busy answering
                return
            self._waiting[request] = time.monotonic()
        super().process_request(request, client_address)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self._lock:
                self._waiting.pop(request, None)

    def busy(self, connection: socket.socket, busy: bool) -> None:
        """Mark a connection as answering a whole request (not to be closed), or waiting."""
        with self._lock:
            if connection in self._waiting:
                self._waiting[connection] = None if busy else time.monotonic()

    def _close_longest_waiting(self) -> bool:
        waiting = [(since, c) for c, since in self._waiting.items() if since is not None]
        if not waiting:
            return False
        _, connection = min(waiting, key=lambda item: item[0])
        del self._waiting[connection]
        with suppress(OSError):  # its thread's read returns at once, and the thread ends
            connection.shutdown(socket.SHUT_RDWR)
        return True


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: the workers pool their connections
    timeout = READ_TIMEOUT
    server: _Server

    def do_POST(self) -> None:
        self._receive()

    do_PUT = do_PATCH = do_POST

    def do_GET(self) -> None:
        self._answer(HTTPStatus.OK, b"relay listen: POST deliveries here\n")

    def log_message(self, format: str, *args: Any) -> None:
        """The server's own access log stays quiet: each delivery is printed instead."""

    def _receive(self) -> None:
        length = self.headers.get("content-length")
        size = _count(length)
        if size is None:
            self.close_connection = True
            self._answer(HTTPStatus.LENGTH_REQUIRED, b"a Content-Length is required\n")
            return
        if size > MAX_BODY:
            self.close_connection = True
            self._answer(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, b"the body is too large\n")
            return
        body = self.rfile.read(size)
        self.server.busy(self.connection, True)
        try:
            headers = {name.lower(): value for name, value in self.headers.items()}
            self.server.on_delivery(Delivery(headers, body, time.time()))
            self._answer(HTTPStatus(self.server.answer), b'{"ok":true}\n')
        finally:
            self.server.busy(self.connection, False)

    def _answer(self, status: HTTPStatus, body: bytes) -> None:
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def _bind(port: int) -> _Server:
    try:
        return _Server(port)
    except OSError as exc:
        raise ListenError(
            f"cannot listen on {HOST}:{port}: {exc.strerror}; choose another with --port"
        ) from None


# --- what is printed ---------------------------------------------------------------------------


class _Secrets:
    """The subscription's signing secrets, read again when a signature does not verify
    (the secret may have been rotated through the API meanwhile)."""

    def __init__(self, client: Redis, record: SubscriptionRecord) -> None:
        self._client = client
        self._record = record

    def verify(self, delivery: Delivery) -> str:
        result = check_signatures(delivery, self._record)
        if result == "signature ok":
            return result
        fresh = subscriptions.get_subscription(self._client, sub_id=self._record.id)
        if fresh is not None and fresh.signing_secrets(now_ms=now_ms()) != self._secrets():
            self._record = fresh
            return check_signatures(delivery, fresh)
        return result

    def _secrets(self) -> list[str]:
        return self._record.signing_secrets(now_ms=now_ms())


def check_signatures(delivery: Delivery, record: SubscriptionRecord) -> str:
    """`signature ok` when webhook-signature and X-LD-Signature both verify with one of the
    subscription's secrets and the timestamp is recent; else what failed."""
    headers = delivery.headers
    if not any(name.lower() in headers for name in _SIGNATURE_HEADERS):
        return "UNSIGNED"
    timestamp = _count(headers.get("webhook-timestamp"))
    if timestamp is None:
        return "signature BAD (no webhook-timestamp)"
    if abs(delivery.received_at - timestamp) > TIMESTAMP_TOLERANCE:
        return "signature BAD (webhook-timestamp is more than 5 minutes away)"
    expected = [
        signing.sign(
            msg_id=headers.get("webhook-id", ""),
            timestamp=timestamp,
            body=delivery.body,
            secrets=[secret],
        )
        for secret in record.signing_secrets(now_ms=now_ms())
    ]
    failed = [
        name
        for name in _SIGNATURE_HEADERS
        if not _matches(headers.get(name.lower(), ""), [signed[name] for signed in expected])
    ]
    return f"signature BAD ({', '.join(failed)})" if failed else "signature ok"


def _count(text: str | None) -> int | None:
    """A header's non-negative integer (ASCII digits, at most 15 of them), else None."""
    if text is None or not (text.isascii() and text.isdigit()) or len(text) > 15:
        return None
    return int(text)


def _matches(given: str, wanted: list[str]) -> bool:
    """One of the header's space-separated signatures is one of `wanted` (constant time)."""
    return any(hmac.compare_digest(g, w) for g in given.split() for w in wanted)


def describe(delivery: Delivery) -> str:
    """`feature-environment-enabled, flag checkout.v2, default/production, by alice@...`, from
    the body, worded as `relay up`'s activity lines word an event."""
    try:
        event = json.loads(delivery.body)
    except (ValueError, RecursionError):  # RecursionError: nesting deeper than json parses
        return f"(not JSON: {len(delivery.body)} bytes)"
    if not isinstance(event, dict):
        return "(JSON, not an event object)"
    return activity.describe({**event, "type": _kind(event)})


def _kind(event: dict[str, Any]) -> Any:
    """Unleash's `type`, else a LaunchDarkly entry's first access's action, else its kind."""
    accesses = event.get("accesses")
    first = accesses[0] if isinstance(accesses, list) and accesses else None
    action = first.get("action") if isinstance(first, dict) else None
    return event.get("type") or action or event.get("kind")


def _print(out: TextIO, delivery: Delivery, *, secrets: _Secrets) -> None:
    attempt = delivery.headers.get(ATTEMPT_HEADER.lower(), "")
    line = "  ".join(
        [
            datetime.fromtimestamp(delivery.received_at).strftime("%H:%M:%S"),
            describe(delivery),
            f"attempt {_shown(attempt)}" if attempt else "attempt ?",
            secrets.verify(delivery),
            _shown(delivery.headers.get("webhook-id", "")),
        ]
    )
    print(line.rstrip(), file=out, flush=True)


def _shown(value: Any) -> str:
    """A sender's text made safe for a terminal: control characters escaped, bounded."""
    return printable(str(value)) if value is not None else ""


# --- around the serving ------------------------------------------------------------------------


def _say_ready(out: TextIO, listening: Listening, origin: str, settings: Settings) -> None:
    record = listening.record
    how = "created" if listening.created else "taken back from an earlier relay listen"
    resources = [r for s in record.statements for r in s.get("resources", [])]
    policy = ", ".join(_shown(r) for r in resources) or "every event"
    lines = [
        f"relay listen: deliveries to {origin}/ are printed here",
        # a writer may have renamed a subscription taken back: its name is theirs
        f"  subscription  {record.id} ({_shown(record.name)}, {how})",
        f"  policy        {policy}",
        f"  secret        {record.secret}",
    ]
    if settings.has_redis:
        lines.append("  (deliveries come from the workers: only workers on this machine reach it)")
    lines.append("Ctrl-C stops listening and deletes the subscription.")
    print("\n".join(lines), file=out, flush=True)


def _keep_alive(client: Redis, sub_id: str, stopped: threading.Event, out: TextIO) -> None:
    """Refresh the heartbeat until stopped; stop listening when the subscription is deleted."""
    every = listeners.LISTENER_TTL_MS / 3000
    while not stopped.wait(every):
        try:
            alive = listeners.beat(client, sub_id=sub_id, now_ms=now_ms())
        except Exception as exc:  # Redis away for a moment: the next beat may get through
            print(f"relay listen: heartbeat failed ({exc}); retrying", file=out, flush=True)
            continue
        if not alive:
            print(
                f"relay listen: subscription {sub_id} was deleted; stopping", file=out, flush=True
            )
            stopped.set()


def _remove(client: Redis, record: SubscriptionRecord, out: TextIO) -> None:
    """Delete the listener's subscription, unless a writer made it a subscription of its own
    (moved its URL: the mark is gone) or deleted it meanwhile."""
    try:
        deleted = listeners.delete_if_listening(client, sub_id=record.id)
        listeners.forget(client, sub_id=record.id)
    except Exception as exc:
        print(
            f"relay listen: could not delete subscription {record.id} ({exc}); the sweep "
            "deletes it within two minutes",
            file=out,
            flush=True,
        )
        return
    said = (
        f"deleted subscription {record.id}"
        if deleted
        else f"subscription {record.id} was deleted or moved to another URL meanwhile; left as is"
    )
    print(f"relay listen: {said}", file=out, flush=True)


@contextmanager
def _stop_on_sigterm() -> Iterator[None]:
    """SIGTERM stops the listener as Ctrl-C does (the subscription is deleted)."""

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
