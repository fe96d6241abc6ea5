"""The lean HTTP/1.1 client: answers, keep-alive reuse, limits, deadline and the guard."""

from __future__ import annotations

import asyncio
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest

from relay.settings import Settings
from workers.delivery.retry import Outcome, classify
from workers.http_client import LeanClient, SendResult, SyncClient, parse_retry_after

BODY = b'{"id":1,"type":"feature-created"}'
FAST = Settings(allow_private_destinations=True, delivery_timeout=1.0, delivery_connect_timeout=0.5)
TEN_MB = 10 * 1024 * 1024

Answer = Callable[[socket.socket, bytes], bool]  # writes the reply; True keeps the connection


class RawServer:
    """A TCP server on 127.0.0.1 speaking HTTP by hand, one thread per connection.

    Records each request head and body and how many connections were accepted, so that
    keep-alive reuse and closing are observable.
    """

    def __init__(self, answer: Answer, tls: ssl.SSLContext | None = None) -> None:
        self.answer = answer
        self.tls = tls
        self.requests: list[bytes] = []
        self.connections = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        scheme = "https" if tls else "http"
        self.url = f"{scheme}://127.0.0.1:{self.listener.getsockname()[1]}/hook"
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self.listener.close()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(connection,), daemon=True).start()

    def _serve(self, connection: socket.socket) -> None:
        if self.tls is not None:
            try:
                connection = self.tls.wrap_socket(connection, server_side=True)
            except OSError:
                connection.close()
                return  # the client refused the handshake
        with connection:
            buffer = b""
            while True:
                while b"\r\n\r\n" not in buffer:
                    chunk = connection.recv(65536)
                    if not chunk:
                        return
                    buffer += chunk
                head, _, buffer = buffer.partition(b"\r\n\r\n")
                length = int(_header(head, b"content-length") or b"0")
                while len(buffer) < length:
                    buffer += connection.recv(65536)
                body, buffer = buffer[:length], buffer[length:]
                self.requests.append(head + b"\r\n\r\n" + body)
                try:
                    if not self.answer(connection, head):
                        return
                except OSError:
                    return  # the client went away, which is what some answers are for


def _header(head: bytes, name: bytes) -> bytes | None:
    for line in head.split(b"\r\n")[1:]:
        key, _, value = line.partition(b":")
        if key.strip().lower() == name:
            return value.strip()
    return None


def reply(status: str, body: bytes = b"thanks", extra: bytes = b"") -> bytes:
    head = f"HTTP/1.1 {status}\r\ncontent-length: {len(body)}\r\n".encode()
    return head + extra + b"\r\n" + body


@pytest.fixture
def serve() -> Iterator[Callable[[Answer], RawServer]]:
    """A factory of raw servers, all closed after the test."""
    made: list[RawServer] = []

    def make(answer: Answer, tls: ssl.SSLContext | None = None) -> RawServer:
        made.append(RawServer(answer, tls))
        return made[-1]

    yield make
    for server in made:
        server.close()


def post_all(urls: list[str], settings: Settings = FAST, pause: float = 0.0) -> list[SendResult]:
    """Send to each URL in turn through one client, `pause` seconds apart."""

    async def run() -> list[SendResult]:
        client = LeanClient(settings)
        results = []
        try:
            for url in urls:
                results.append(await client.send(url=url, body=BODY, headers={"webhook-id": "m"}))
                await asyncio.sleep(pause)
        finally:
            await client.aclose()
        return results

    return asyncio.run(run())


def ok(connection: socket.socket, head: bytes) -> bool:
    connection.sendall(reply("200 OK"))
    return True


def test_2xx_is_delivered_with_the_request_as_sent(serve: Any) -> None:
    """A 200 is delivered; the POST carries the body, JSON type, length, agent and identity."""
    # given
    server = serve(ok)
    # when
    [result] = post_all([server.url])
    # then
    assert (result.status_code, result.response_body, result.error) == (200, "thanks", None)
    assert classify(result) is Outcome.DELIVERED
    [request] = server.requests
    head, _, body = request.partition(b"\r\n\r\n")
    assert head.startswith(b"POST /hook HTTP/1.1") and body == BODY
    assert _header(head, b"content-type") == b"application/json"
    assert _header(head, b"content-length") == str(len(BODY)).encode()
    assert _header(head, b"accept-encoding") == b"identity"
    assert (_header(head, b"user-agent") or b"").startswith(b"relay/")
    assert _header(head, b"webhook-id") == b"m"


def test_500_with_retry_after_is_retried_later(serve: Any) -> None:
    """A 500 keeps its status, body and Retry-After seconds."""
    server = serve(
        lambda c, h: c.sendall(reply("500 Oops", b"down", b"retry-after: 120\r\n")) is None
    )
    [result] = post_all([server.url])
    assert (result.status_code, result.response_body, result.retry_after) == (500, "down", 120.0)
    assert classify(result) is Outcome.RETRY


def test_redirect_is_an_answer_not_followed(serve: Any) -> None:
    """A 302 comes back as a status; its Location is never requested."""
    server = serve(lambda c, h: c.sendall(reply("302 Found", b"", b"location: /x\r\n")) is None)
    [result] = post_all([server.url])
    assert result.status_code == 302
    assert len(server.requests) == 1


def test_keep_alive_connection_is_reused(serve: Any) -> None:
    """Three sends to one origin go over one connection."""
    server = serve(ok)
    results = post_all([server.url] * 3)
    assert [r.status_code for r in results] == [200, 200, 200]
    assert (len(server.requests), server.connections) == (3, 1)


def test_receiver_closing_keep_alive_between_requests_is_sent_again(serve: Any) -> None:
    """A pooled connection the receiver closed is replaced, and every send succeeds once."""
    # given: the receiver answers keep-alive, then closes the connection quietly
    server = serve(lambda c, h: c.sendall(reply("200 OK")) is not None)
    # when
    results = post_all([server.url] * 3, pause=0.05)
    # then
    assert [r.status_code for r in results] == [200, 200, 200]
    assert (len(server.requests), server.connections) == (3, 3)


def test_receiver_closing_a_pooled_connection_unnoticed_is_retried_once(serve: Any) -> None:
    """The close lands only when the next request is written: a fresh connection takes it."""
    # given: the second request on a connection gets a hang-up without any answer
    seen: dict[socket.socket, int] = {}  # holding the socket: its identity is never reused

    def answer(connection: socket.socket, head: bytes) -> bool:
        seen[connection] = seen.get(connection, 0) + 1
        if seen[connection] > 1:
            connection.shutdown(socket.SHUT_RDWR)
            return False
        connection.sendall(reply("200 OK"))
        return True

    server = serve(answer)
    # when
    results = post_all([server.url] * 3)
    # then: each later send hit the dead connection once, then went out on a new one
    assert [r.status_code for r in results] == [200, 200, 200]
    assert (len(server.requests), server.connections) == (5, 3)


def test_connection_close_answer_is_not_pooled(serve: Any) -> None:
    """`connection: close` from the receiver means a new connection next time."""
    server = serve(lambda c, h: c.sendall(reply("200 OK", extra=b"connection: close\r\n")) is None)
    results = post_all([server.url] * 2)
    assert [r.status_code for r in results] == [200, 200]
    assert server.connections == 2


def test_10_mb_answer_is_read_only_up_to_the_limit(serve: Any) -> None:
    """A 10 MB body is cut at delivery_max_response_bytes and that connection is dropped."""
    # given
    written = [0]

    def big(connection: socket.socket, head: bytes) -> bool:
        connection.sendall(f"HTTP/1.1 200 OK\r\ncontent-length: {TEN_MB}\r\n\r\n".encode())
        chunk = b"x" * 65536
        while written[0] < TEN_MB:
            connection.sendall(chunk)
            written[0] += len(chunk)
        return True

    server = serve(big)
    settings = FAST.model_copy(update={"delivery_max_response_bytes": 64 * 1024})
    # when
    results = post_all([server.url] * 2, settings=settings)
    # then
    assert [r.status_code for r in results] == [200, 200], [r.error for r in results]
    assert results[0].error is None and results[0].response_body == "x" * 1024
    assert server.connections == 2  # not pooled: the rest of the body was never read
    assert written[0] < TEN_MB  # the client stopped reading; the sender was left blocked


def test_trickling_receiver_is_cut_at_the_total_deadline(serve: Any) -> None:
    """Bytes every 50 ms keep each read alive, but the whole exchange ends at delivery_timeout."""

    def trickle(connection: socket.socket, head: bytes) -> bool:
        connection.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 200\r\n\r\n")
        for _ in range(200):
            connection.sendall(b"z")
            time.sleep(0.05)
        return True

    server = serve(trickle)
    settings = FAST.model_copy(update={"delivery_timeout": 0.6})
    [result] = post_all([server.url], settings=settings)
    assert result.error is not None and "timed out" in result.error
    assert "after the status line" in result.error
    assert 0.55 <= result.duration_ms / 1000 < 1.2  # the receiver would take 10 s
    assert result.status_code == 200 and 0 < len(result.response_body) < 200


def test_trickling_headers_are_retried(serve: Any) -> None:
    """Cut before the status line, there is no answer: retry."""

    def trickle(connection: socket.socket, head: bytes) -> bool:
        for byte in b"HTTP/1.1 200 OK\r\nx-slow: " + b"s" * 200:
            connection.sendall(bytes([byte]))
            time.sleep(0.05)
        return True

    server = serve(trickle)
    [result] = post_all([server.url], settings=FAST.model_copy(update={"delivery_timeout": 0.5}))
    assert result.status_code is None
    assert result.error is not None and result.error.startswith("timed out")
    assert classify(result) is Outcome.RETRY


def test_garbage_answer_is_a_protocol_error(serve: Any) -> None:
    """Something that is not HTTP comes back as a protocol error to retry."""
    server = serve(lambda c, h: c.sendall(b"SSH-2.0-OpenSSH\r\n\r\n") and False)
    [result] = post_all([server.url])
    assert result.status_code is None
    assert result.error is not None and result.error.startswith("protocol error")
    assert classify(result) is Outcome.RETRY


def test_header_that_cannot_be_sent_is_an_error_not_an_exception(serve: Any) -> None:
    """A subscription header with a line break is never written to the wire."""

    async def run() -> SendResult:
        client = LeanClient(FAST)
        try:
            return await client.send(url=server.url, body=BODY, headers={"x-a": "1\r\nx-b: 2"})
        finally:
            await client.aclose()

    server = serve(ok)
    result = asyncio.run(run())
    assert result.error is not None and result.error.startswith("protocol error")
    assert server.requests == []


def test_closed_port_is_a_connection_error() -> None:
    """Nobody listening: an error to retry, not an exception."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    [result] = post_all([f"http://127.0.0.1:{port}/hook"])
    assert result.status_code is None
    assert result.error is not None and result.error.startswith("connection failed")
    assert classify(result) is Outcome.RETRY


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_guard_refuses_private_addresses(host: str, serve: Any) -> None:
    """Without allow_private_destinations no connection is opened: dead, not retried."""
    # given
    server = serve(ok)
    strict = FAST.model_copy(update={"allow_private_destinations": False})
    # when
    [result] = post_all([server.url.replace("127.0.0.1", host)], settings=strict)
    # then
    assert result.refused and classify(result) is Outcome.DEAD
    assert result.error is not None and result.error.startswith("destination refused:")
    assert "loopback" in result.error
    assert server.connections == 0


def test_allowed_cidrs_open_the_guard(serve: Any) -> None:
    """An address inside allowed_destination_cidrs is delivered to."""
    server = serve(ok)
    settings = FAST.model_copy(
        update={"allow_private_destinations": False, "allowed_destination_cidrs": ["127.0.0.0/8"]}
    )
    [result] = post_all([server.url], settings=settings)
    assert result.status_code == 200


def test_unresolvable_host_is_retried_not_refused() -> None:
    """A name that does not resolve (perhaps for now) is an error to retry."""
    strict = FAST.model_copy(update={"allow_private_destinations": False})
    [result] = post_all(["http://no-such-host.invalid/hook"], settings=strict)
    assert not result.refused
    assert result.error is not None and result.error.startswith("cannot resolve")


def test_url_that_is_not_http_is_refused() -> None:
    """A stored URL that is not http(s) is permanent."""
    [result] = post_all(["ftp://example.com/hook"])
    assert result.refused and classify(result) is Outcome.DEAD
    assert result.error is not None and result.error.startswith("destination refused:")


def test_tls_certificate_is_verified(serve: Any, tmp_path: Path) -> None:
    """An https receiver with a certificate no CA signed is never sent the event."""
    # given: a self-signed certificate for localhost
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    command = "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
    command += " -days 1 -subj /CN=localhost -addext subjectAltName=DNS:localhost"
    subprocess.run(
        [*command.split(), "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = serve(ok, context)
    # when
    [result] = post_all([server.url.replace("127.0.0.1", "localhost")])
    # then
    assert result.status_code is None and not result.refused
    assert result.error is not None and result.error.startswith("connection failed")
    assert "CERTIFICATE_VERIFY_FAILED" in result.error
    assert server.requests == []


def test_answer_framings_are_read_whole(serve: Any) -> None:
    """Chunked, close-delimited and 1xx-preceded answers: each read to its end, pooled or not."""
    answers = iter(
        [
            b"HTTP/1.1 100 Continue\r\n\r\n" + reply("201 Created", b"made"),
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
            b"4\r\nchun\r\n3\r\nked\r\n0\r\n\r\n",
            b"HTTP/1.1 204 No Content\r\n\r\n",
            b"HTTP/1.0 200 OK\r\n\r\nuntil the end",  # no length: the close ends it
        ]
    )

    def answer(connection: socket.socket, head: bytes) -> bool:
        text = next(answers)
        connection.sendall(text)
        return not text.startswith(b"HTTP/1.0")

    server = serve(answer)
    results = post_all([server.url] * 4)
    assert [(r.status_code, r.response_body, r.error) for r in results] == [
        (201, "made", None),
        (200, "chunked", None),
        (204, "", None),
        (200, "until the end", None),
    ]
    assert server.connections == 1  # the first three kept it open, HTTP/1.0 closed it


def test_bytes_after_a_whole_answer_keep_the_answer_not_the_connection(serve: Any) -> None:
    """A receiver out of step: its answer counts, its connection is not used again."""
    server = serve(lambda c, h: c.sendall(reply("200 OK") + b"SURPRISE\r\n\r\n") is None)
    results = post_all([server.url] * 2)
    assert [(r.status_code, r.error) for r in results] == [(200, None), (200, None)]
    assert server.connections == 2


def test_a_cut_body_is_recorded_as_an_error(serve: Any) -> None:
    """The receiver hangs up in the middle of a body whose length it announced."""

    def cut(connection: socket.socket, head: bytes) -> bool:
        connection.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nonly this")
        return False

    [result] = post_all([serve(cut).url])
    assert result.error is not None and "closed the connection" in result.error
    assert result.response_body == "only this"
    assert classify(result) is Outcome.DELIVERED  # it answered 200: it has the event


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (200, Outcome.DELIVERED),
        (204, Outcome.DELIVERED),
        (410, Outcome.GONE),
        (404, Outcome.RETRY),
        (429, Outcome.RETRY),
        (503, Outcome.RETRY),
        (308, Outcome.RETRY),
    ],
)
def test_status_codes_classify(status: int, outcome: Outcome, serve: Any) -> None:
    """The status code alone decides between delivered, gone and retry."""
    server = serve(lambda c, h: c.sendall(reply(f"{status} X", b"")) is None)
    [result] = post_all([server.url])
    assert result.status_code == status and result.error is None
    assert classify(result) is outcome


def test_retry_after_http_date_is_seconds_from_now(serve: Any) -> None:
    """Retry-After as an HTTP date is the time left until it."""
    moment = format_datetime(datetime.now(UTC) + timedelta(seconds=90), usegmt=True)
    extra = f"retry-after: {moment}\r\n".encode()
    server = serve(lambda c, h: c.sendall(reply("429 Slow down", b"", extra)) is None)
    [result] = post_all([server.url])
    assert result.retry_after is not None and 85 <= result.retry_after <= 90


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


class Collector:
    """A BodyReader keeping what it is given; stops after `stop_after` body bytes."""

    def __init__(self, stop_after: int | None = None) -> None:
        self.stop_after = stop_after
        self.status = 0
        self.headers: dict[str, str] = {}
        self.body = bytearray()

    def head(self, status: int, headers: Mapping[str, str]) -> bool:
        self.status, self.headers = status, dict(headers)
        return False

    def feed(self, chunk: bytes) -> bool:
        self.body += chunk
        return self.stop_after is not None and len(self.body) >= self.stop_after


def get_all(urls: list[str], readers: list[Collector]) -> list[SendResult]:
    """GET each URL in turn through one synchronous client, into its reader."""
    with SyncClient(FAST, timeout=1.0, connect_timeout=0.5) as client:
        return [
            client.get(url=url, headers={"authorization": "t"}, reader=reader)
            for url, reader in zip(urls, readers, strict=True)
        ]


def test_get_gives_the_reader_the_status_headers_and_raw_body(serve: Any) -> None:
    """A GET has no body or content headers; the reader gets every header and the raw body."""
    # given
    extra = b"content-encoding: gzip\r\nx-twice: a\r\nx-twice: b\r\n"
    server = serve(lambda c, h: c.sendall(reply("200 OK", b"\x1f\x8bnot inflated", extra)) is None)
    reader = Collector()
    # when
    [result] = get_all([server.url + "?offset=0"], [reader])
    # then
    assert (result.status_code, result.error, result.response_body) == (200, None, "")
    assert reader.status == 200 and bytes(reader.body) == b"\x1f\x8bnot inflated"
    assert reader.headers["content-encoding"] == "gzip"
    assert reader.headers["x-twice"] == "a, b"
    [request] = server.requests
    assert request.startswith(b"GET /hook?offset=0 HTTP/1.1\r\n")
    assert request.endswith(b"\r\n\r\n")
    head = request[: -len(b"\r\n\r\n")]
    assert _header(head, b"content-length") is None and _header(head, b"content-type") is None
    assert _header(head, b"authorization") == b"t"


def test_get_keeps_alive_until_a_reader_stops_early(serve: Any) -> None:
    """Whole answers keep the connection; a reader that wants no more has it dropped."""

    def in_two_parts(connection: socket.socket, head: bytes) -> bool:
        answer = reply("200 OK", b"x" * 1000)
        connection.sendall(answer[:-990])
        time.sleep(0.05)
        connection.sendall(answer[-990:])
        return True

    server = serve(in_two_parts)
    readers = [Collector(), Collector(), Collector(stop_after=1), Collector()]
    results = get_all([server.url] * 4, readers)
    assert [r.status_code for r in results] == [200] * 4
    assert [len(r.body) for r in readers] == [1000, 1000, 10, 1000]
    assert server.connections == 2  # the third answer was left half read: not pooled
