"""The Sentinel topology harness: replication, failover, rejoin, as redis-py clients see them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from redis.sentinel import Sentinel

from tests.redis_topology import RedisTopology
from tests.support import eventually

pytestmark = pytest.mark.slow

# what a client sees while the primary is gone and until it finds the new one
FAILOVER_ERRORS = (redis.ConnectionError, redis.TimeoutError, redis.ReadOnlyError)


@pytest.fixture
def topology(tmp_path: Path) -> Iterator[RedisTopology]:
    with RedisTopology(tmp_path) as topology:
        yield topology


@pytest.fixture
def sentinel(topology: RedisTopology) -> Iterator[Sentinel]:
    sentinel = Sentinel(topology.sentinel_hosts, socket_timeout=2, socket_connect_timeout=1)
    yield sentinel
    for client in sentinel.sentinels:
        client.close()


@pytest.fixture
def master(topology: RedisTopology, sentinel: Sentinel) -> Iterator[redis.Redis]:
    """The primary as the sentinels name it, followed across failovers (redis-py master_for)."""
    client = sentinel.master_for(
        topology.master_name, password=topology.password, decode_responses=True
    )
    yield client
    client.close()


def test_a_write_confirmed_by_wait_is_on_the_replica(
    topology: RedisTopology, master: redis.Redis
) -> None:
    """A write that WAIT 1 confirms can be read from the replica."""
    master.set("greeting", "hello")

    assert master.wait(1, 1000) == 1
    [replica] = topology.replicas_of_primary()
    with replica.client(decode_responses=True) as client:
        assert client.get("greeting") == "hello"


def test_master_for_follows_a_failover_and_keeps_confirmed_writes(
    topology: RedisTopology, master: redis.Redis
) -> None:
    """After the primary dies, the same master_for client writes to the promoted replica,
    which holds every write WAIT confirmed."""
    # given
    master.set("before", "confirmed")
    assert master.wait(1, 1000) == 1
    # when
    old = topology.kill_primary()
    new = topology.wait_for_failover(old)
    # then
    assert new is not old
    eventually(
        lambda: master.set("after", "written"),
        timeout=30,
        ignoring=FAILOVER_ERRORS,
        what="a write through master_for after the failover",
    )
    assert master.get("before") == "confirmed"
    with new.client(decode_responses=True) as client:
        assert client.get("after") == "written"


def test_a_restarted_former_primary_becomes_a_replica_of_the_new_one(
    topology: RedisTopology,
) -> None:
    """The sentinels turn a former primary that comes back into the new primary's replica,
    which then holds what was written to the new primary meanwhile."""
    # given
    old = topology.kill_primary()
    new = topology.wait_for_failover(old)
    with new.client(decode_responses=True) as client:
        client.set("while-away", "written")
    # when
    topology.start(old)
    topology.wait_until_replica(old)
    # then
    assert old.role() == "slave"
    assert old.replication()["master_port"] == new.port
    assert topology.primary() is new
    assert topology.replicas_of_primary() == [old]
    with old.client(decode_responses=True) as client:
        assert client.get("while-away") == "written"


def test_close_stops_every_process_cleanly(tmp_path: Path) -> None:
    """close() leaves no process running; each exited on SIGTERM (AOF fsynced), not SIGKILL."""
    topology = RedisTopology(tmp_path, replicas=1, sentinels=2)
    processes = [server.process for server in [*topology.nodes, *topology.sentinels]]

    topology.close()

    assert [process.poll() for process in processes] == [0] * len(processes)


def test_sentinels_with_their_own_password(tmp_path: Path) -> None:
    """With `sentinel_password`, a client needs it to ask the sentinels, and with it finds
    the primary; the sentinels, which AUTH to each other with it, see one another."""
    with RedisTopology(tmp_path, replicas=0, sentinel_password="sentinel-secret") as topology:
        without = Sentinel(topology.sentinel_hosts, socket_timeout=2)
        with_password = Sentinel(
            topology.sentinel_hosts,
            socket_timeout=2,
            sentinel_kwargs={"password": "sentinel-secret"},
        )

        with pytest.raises(redis.sentinel.MasterNotFoundError):
            without.discover_master(topology.master_name)
        assert with_password.discover_master(topology.master_name) == (
            "127.0.0.1",
            topology.primary().port,
        )
        for client in [*without.sentinels, *with_password.sentinels]:
            client.close()
