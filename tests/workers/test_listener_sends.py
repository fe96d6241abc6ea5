"""The send path of `relay listen`'s loopback allowance, attacked from the worker's side.

`build_request` flags a request (`local_listener`) only when its URL is at the origin its
subscription is marked for; `LeanClient.send` then lets plain HTTP to a literal loopback
address past the guard, in a pool of its own. Everything else stays guarded. Real HTTP
servers on 127.0.0.1, a real Redis, the destination guard on.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from relay import clock
from relay.cli.listen import take_subscription
from relay.destinations import listener_origin
from relay.integrations.catalog import load_catalog
from relay.settings import Settings
from relay.store import deliveries
from relay.store.client import Redis
from relay.store.deliveries import Delivery, DeliveryKind, DeliveryState, NewDelivery
from tests import support
from workers.delivery import batch
from workers.delivery.payloads import ATTEMPT_HEADER, WebhookParts
from workers.delivery.sender import LoopSender
from workers.delivery.subscription_cache import SubscriptionCache
from workers.http_client import LeanClient, SendResult

GUARDED = Settings(delivery_timeout=2.0, delivery_connect_timeout=1.0)
BODY = b'{"type":"feature-created"}'


class KeepAliveServer(ThreadingHTTPServer):
    """An HTTP/1.1 server on 127.0.0.1 that keeps connections open (so pooling is
    observable) and counts the connections it accepted and the requests it answered."""

    daemon_threads = True

    def __init__(self) -> None:
        self.connections = 0
        self.requests: list[dict[str, str]] = []
        super().__init__(("127.0.0.1", 0), _handler(self))
        self.port = self.server_address[1]
        self.origin = listener_origin("127.0.0.1", self.port)
        threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05}).start()

    def process_request(self, request: Any, client_address: Any) -> None:
        self.connections += 1
        super().process_request(request, client_address)


def _handler(server: KeepAliveServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length", 0)))
            server.requests.append({k.lower(): v for k, v in self.headers.items()})
            self.send_response(200)
            self.send_header("content-length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


@pytest.fixture
def server() -> Iterator[KeepAliveServer]:
    running = KeepAliveServer()
    yield running
    running.shutdown()
    running.server_close()


def send_all(sends: list[tuple[str, bool]], settings: Settings = GUARDED) -> list[SendResult]:
    """Each (url, local_listener) sent in turn through one client (one pool)."""

    async def run() -> list[SendResult]:
        client = LeanClient(settings)
        try:
            return [
                await client.send(url=url, body=BODY, headers={}, local_listener=flag)
                for url, flag in sends
            ]
        finally:
            await client.aclose()

    return asyncio.run(run())


# --- LeanClient.send ---------------------------------------------------------------------------


def test_a_flagged_send_reaches_loopback_past_the_guard(server: KeepAliveServer) -> None:
    """local_listener=True: the POST reaches 127.0.0.1 with the guard on."""
    [result] = send_all([(f"{server.origin}/", True)])
    assert result.status_code == 200 and result.error is None
    assert len(server.requests) == 1


def test_the_same_url_unflagged_is_refused_as_loopback(server: KeepAliveServer) -> None:
    """local_listener=False: the guard refuses it, no connection is opened."""
    [result] = send_all([(f"{server.origin}/", False)])
    assert result.refused and result.status_code is None
    assert result.error is not None and result.error.startswith("destination refused")
    assert "loopback" in result.error
    assert server.connections == 0


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost:{port}/",  # a name: the guard resolves it, and refuses it
        "https://127.0.0.1:{port}/",  # the allowance is for plain HTTP only
        "http://127.0.0.2:{port}/",  # loopback, but not a listener's literal address
        "http://127.1:{port}/",  # 127.0.0.1 in short form
        "http://2130706433:{port}/",  # 127.0.0.1 as one number
        "http://0.0.0.0:{port}/",
        "http://[::ffff:127.0.0.1]:{port}/",  # IPv4-mapped
        "http://10.0.0.1:{port}/",  # a private, non-loopback literal
        "http://169.254.169.254:{port}/",  # cloud metadata
    ],
)
def test_a_flagged_send_anywhere_else_is_still_guarded(server: KeepAliveServer, url: str) -> None:
    """The flag opens literal 127.0.0.1/::1 over plain HTTP only; every other target is
    refused by the guard as before, without a connection."""
    [result] = send_all([(url.format(port=server.port), True)])
    assert result.refused, result
    assert result.error is not None and result.error.startswith("destination refused")
    assert server.connections == 0


def test_a_listener_connection_never_serves_an_unflagged_send(server: KeepAliveServer) -> None:
    """Two flagged sends share one pooled connection; an unflagged send to the same origin
    right after finds no pooled connection to borrow and is refused."""
    url = f"{server.origin}/"
    first, second, unflagged = send_all([(url, True), (url, True), (url, False)])
    assert (first.status_code, second.status_code) == (200, 200)
    assert server.connections == 1  # pooled: the third send had a live connection to take
    assert unflagged.refused and unflagged.error is not None and "loopback" in unflagged.error
    assert len(server.requests) == 2


def test_guard_opened_by_cidrs_keeps_the_pools_apart(server: KeepAliveServer) -> None:
    """With 127.0.0.0/8 allowed, a flagged and an unflagged send both arrive, each on a
    connection of its own pool."""
    opened = GUARDED.model_copy(update={"allowed_destination_cidrs": ["127.0.0.0/8"]})
    url = f"{server.origin}/"
    results = send_all([(url, True), (url, False), (url, True), (url, False)], opened)
    assert [r.status_code for r in results] == [200] * 4
    assert server.connections == 2


# --- build_request -----------------------------------------------------------------------------

MARK = "http://127.0.0.1:9876"


@pytest.mark.parametrize(
    ("url", "mark", "flagged"),
    [
        ("http://127.0.0.1:9876/", MARK, True),
        ("http://127.0.0.1:9876/any/path?q=1", MARK, True),  # the origin is what is marked
        ("http://127.0.0.1:9877/", MARK, False),  # another port
        ("http://127.0.0.1:9876/", None, False),  # no mark
        ("http://127.0.0.1:9876/", "", False),
        ("http://127.0.0.1:9876/", "http://127.0.0.1:9877", False),
        ("http://localhost:9876/", MARK, False),
        ("https://127.0.0.1:9876/", MARK, False),
        ("http://127.0.0.2:9876/", MARK, False),
        ("http://127.0.0.1/", "http://127.0.0.1:80", False),  # no port written
        ("http://user:pw@127.0.0.1:9876/", MARK, False),
        ("http://127.0.0.1:9876@example.com/", MARK, False),
        ("http://[::1]:9876/", "http://[::1]:9876", True),
        ("http://[::1]:9876/", MARK, False),
        ("http://127.0.0.1:99999/", MARK, False),  # not a port
        ("https://example.com/", MARK, False),
    ],
)
def test_build_request_flags_only_the_marked_origin(
    redis_client: Redis, url: str, mark: str | None, flagged: bool
) -> None:
    """`local_listener` is set when the URL's origin is exactly the record's mark."""
    record = replace(support.subscription(redis_client, url=url), local_listener=mark)
    delivery = Delivery(
        id="msg_1_s",
        kind=DeliveryKind.EVENT,
        sub_id=record.id,
        event_id=1,
        state=DeliveryState.PENDING,
        attempts=2,
        created_at=0,
        updated_at=0,
        next_attempt_at=None,
        delivered_at=None,
        reason="",
    )
    parts = WebhookParts(body=BODY, content_type="application/json", headers={})
    request = batch.build_request(delivery, record, parts, now_ms=clock.now_ms())
    assert request.local_listener is flagged
    assert request.headers[ATTEMPT_HEADER] == "3"  # two attempts made: this is the third


# --- a batch, as a worker runs it --------------------------------------------------------------


@pytest.fixture
def guarded(settings: Settings) -> Settings:
    return settings.model_copy(update={"allow_private_destinations": False})


@pytest.fixture
def deliver(redis_client: Redis, guarded: Settings) -> Iterator[Callable[[str], None]]:
    """Run one delivery batch now through a real LoopSender, guard on."""
    sender = LoopSender(guarded)
    cache = SubscriptionCache(critical_environments=guarded.critical_set)
    catalog = load_catalog(guarded)

    def run(delivery_id: str) -> None:
        attempts = batch.deliver_batch(
            redis_client,
            ids=[delivery_id],
            settings=guarded,
            cache=cache,
            catalog=catalog,
            send=sender.send_all,
            clock=clock.now_ms,
        )
        sender.run(attempts)

    yield run
    sender.close()


def pending(client: Redis, sub_id: str) -> str:
    """A recorded event's delivery to `sub_id`, due now; its id."""
    event_id = support.record_event(client)
    delivery_id = deliveries.event_delivery_id(event_id=event_id, sub_id=sub_id)
    new = NewDelivery(delivery_id, DeliveryKind.EVENT, sub_id, event_id)
    now = clock.now_ms()
    deliveries.create_deliveries(client, deliveries=[new], now_ms=now, due_at_ms=now)
    return delivery_id


def state_of(client: Redis, delivery_id: str) -> Delivery:
    delivery = deliveries.get_delivery(client, delivery_id=delivery_id)
    assert delivery is not None
    return delivery


def test_a_listeners_subscription_is_delivered_with_the_guard_on(
    redis_client: Redis,
    guarded: Settings,
    server: KeepAliveServer,
    deliver: Callable[[str], None],
) -> None:
    """The subscription `relay listen` makes at the server's origin is delivered to it."""
    # given
    sub_id = take_subscription(redis_client, guarded, origin=server.origin, policies=[]).record.id
    delivery_id = pending(redis_client, sub_id)
    # when
    deliver(delivery_id)
    # then
    assert state_of(redis_client, delivery_id).state is DeliveryState.DELIVERED
    [headers] = server.requests
    assert headers[ATTEMPT_HEADER.lower()] == "1" and headers["webhook-id"] == delivery_id


def test_an_unmarked_subscription_to_the_same_url_is_dead(
    redis_client: Redis, server: KeepAliveServer, deliver: Callable[[str], None]
) -> None:
    """A subscription stored at the listener's URL without the mark is refused, not sent."""
    # given
    sub_id = support.subscribe(redis_client, url=f"{server.origin}/")
    delivery_id = pending(redis_client, sub_id)
    # when
    deliver(delivery_id)
    # then
    delivery = state_of(redis_client, delivery_id)
    assert delivery.state is DeliveryState.DEAD and "loopback" in delivery.reason
    assert server.connections == 0
