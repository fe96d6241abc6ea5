"""The write concern (RELAY_REDIS_MIN_REPLICAS): `confirm_replicas` on a real primary and
replica, and `open_redis` through real sentinels."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import redis

from relay.errors import NotReplicatedError, StoreUnavailableError
from relay.settings import Settings
from relay.store.client import REPLICATION_PROBE, Redis, confirm_replicas, open_redis
from tests.redis_topology import DataNode, RedisTopology

pytestmark = pytest.mark.slow

TIMEOUT = 0.5


def _open(primary: DataNode, *, min_replicas: int) -> Iterator[Redis]:
    client = open_redis(
        Settings(
            redis_url=primary.url, redis_min_replicas=min_replicas, redis_replica_timeout=TIMEOUT
        )
    )
    yield client
    client.close()


@pytest.fixture
def concerned(topology: RedisTopology, replica: DataNode) -> Iterator[Redis]:
    """A client of the primary whose writes one replica must confirm within 0.5 s."""
    yield from _open(topology.primary(), min_replicas=1)


@pytest.fixture
def unconcerned(topology: RedisTopology, replica: DataNode) -> Iterator[Redis]:
    """A client of the primary without a write concern (the default)."""
    yield from _open(topology.primary(), min_replicas=0)


def _wait_calls(node: DataNode) -> int:
    """How many WAIT commands `node` has run since it started."""
    with node.client(decode_responses=True) as client:
        stats = client.info("commandstats").get("cmdstat_wait", {"calls": 0})
        return int(stats["calls"])


def test_a_write_on_another_pooled_connection_is_on_the_replica_once_confirmed(
    concerned: Redis, replica: DataNode
) -> None:
    """`confirm_replicas` vouches for the client's earlier writes on any of its pooled
    connections: right after it returns, the replica holds them."""
    # given: a write on a pooled connection the confirmation cannot use (it stays taken)
    writer = redis.Redis(connection_pool=concerned.connection_pool, single_connection_client=True)
    try:
        writer.set("audit:written-before", "kept")
        # when
        confirm_replicas(concerned, what="test write")
    finally:
        writer.close()  # gives the connection back to the pool
    # then
    with replica.client(decode_responses=True) as on_replica:
        assert on_replica.get("audit:written-before") == "kept"


def test_without_the_replica_confirming_raises_not_replicated_after_the_timeout(
    topology: RedisTopology, concerned: Redis, replica: DataNode
) -> None:
    """With the replica down, the write stays on the primary and `confirm_replicas` raises
    NotReplicatedError (a StoreUnavailableError) once the replica timeout has passed, not
    before and not much later."""
    # given
    topology.stop(replica)
    concerned.set("audit:unconfirmed", "on the primary")
    # when
    started = time.monotonic()
    with pytest.raises(NotReplicatedError, match="0 of the 1 replicas") as raised:
        confirm_replicas(concerned, what="test write")
    waited = time.monotonic() - started
    # then
    assert isinstance(raised.value, StoreUnavailableError)  # what the API answers with 503
    assert TIMEOUT - 0.05 <= waited < TIMEOUT + 3.0  # slack: two shared cores
    assert concerned.get("audit:unconfirmed") == "on the primary"


def test_without_a_write_concern_nothing_waits(
    topology: RedisTopology, unconcerned: Redis, replica: DataNode
) -> None:
    """With min_replicas=0 (the default), `confirm_replicas` sends nothing to Redis: no
    WAIT and no probe, so even with the replica down it returns at once."""
    # given
    primary = topology.primary()
    topology.stop(replica)
    unconcerned.set("audit:unconcerned", "written")
    waits_before = _wait_calls(primary)
    # when
    started = time.monotonic()
    confirm_replicas(unconcerned, what="test write")
    # then
    assert time.monotonic() - started < TIMEOUT
    assert _wait_calls(primary) == waits_before
    assert unconcerned.get(REPLICATION_PROBE) is None


def test_through_the_sentinels_the_client_reads_and_writes_the_primary(
    topology: RedisTopology, replica: DataNode
) -> None:
    """`open_redis` with RELAY_REDIS_SENTINELS (and the data nodes' password) finds the
    primary the sentinels name: its writes land there, it reads what is written there, and
    its write concern is the settings' own."""
    # given
    settings = Settings(
        redis_sentinels=topology.sentinels_setting,
        redis_password=topology.password,
        redis_sentinel_master=topology.master_name,
        redis_min_replicas=1,
        redis_replica_timeout=TIMEOUT,
    )
    primary = topology.primary()
    client = open_redis(settings)
    try:
        # when
        client.set("audit:via-sentinels", "written")
        confirm_replicas(client, what="test write")
        with primary.client(decode_responses=True) as direct:
            direct.set("audit:on-primary", "read back")
            written = direct.get("audit:via-sentinels")
        # then
        assert written == "written"
        assert client.get("audit:on-primary") == "read back"
        assert client.info("server")["tcp_port"] == primary.port
    finally:
        client.close()
    with replica.client(decode_responses=True) as on_replica:
        assert on_replica.get("audit:via-sentinels") == "written"
