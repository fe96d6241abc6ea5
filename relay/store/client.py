"""Redis connections, and the one place where redis-py's exceptions become store errors.

A process opens its client with `open_redis(settings)`: at a URL, or at the primary that
the sentinels name (asked again at each reconnect, so a failover needs no restart). That
client also carries the settings' write concern: the replicas (`RELAY_REDIS_MIN_REPLICAS`)
that must hold a write before the store reports it done (`confirm_replicas`).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Final, cast
from urllib.parse import urlsplit

import redis
import redis.exceptions
from redis.backoff import ExponentialWithJitterBackoff
from redis.retry import Retry
from redis.sentinel import Sentinel

from relay.errors import NotReplicatedError, StoreError, StoreUnavailableError
from relay.settings import Settings, sentinel_address

log = logging.getLogger(__name__)

Redis = redis.Redis


# what every connection of relay's uses: decoded strings, a PING before reusing an idle
# connection, and bounded waits: a vanished Redis is an error within seconds, not a hang.
# redis-py's own default retries 10 times, each try up to the socket timeout (110 s on a
# stalled Redis); here 3 tries: a refused connection (a primary gone, the sentinels not yet
# switched) is a 503 in about 0.2 s, a stalled Redis one in at most 3 x 5 s
_CONNECTION: Final[dict[str, Any]] = {
    "decode_responses": True,
    "socket_connect_timeout": 2,
    "socket_timeout": 5,
    "health_check_interval": 30,
    "retry_on_timeout": True,
    "retry": Retry(ExponentialWithJitterBackoff(base=0.05, cap=0.5), retries=2),
}
# the probe `confirm_replicas` writes: WAIT counts replicas that hold a connection's last
# write, and the probe is that last write, made after the writes it vouches for
REPLICATION_PROBE: Final = "relay:replication:probe"


class StoreClient(redis.Redis):
    """redis-py's client, with the write concern of the settings it was opened with."""

    min_replicas: int = 0
    replica_timeout_ms: int = 1000


def connect(url: str) -> Redis:
    """A new pooled client for `url` (decoded strings), with no write concern. Tests and
    tools use it; a process's runtime opens its client with `open_redis`."""
    return redis.Redis.from_url(url, **_CONNECTION)


def open_redis(settings: Settings) -> Redis:
    """The client of a process (the caller owns it and closes it at exit): at
    RELAY_REDIS_URL or at the sentinels' primary, with the settings' credentials, TLS and
    write concern."""
    settings.require_redis()
    options: dict[str, Any] = {**_CONNECTION, **_credentials(settings)}
    if settings.redis_uses_tls:
        options.update(settings.redis_tls_options())
    client: StoreClient
    if settings.redis_sentinels:
        sentinel = Sentinel(
            [sentinel_address(address) for address in settings.redis_sentinels],
            sentinel_kwargs=_sentinel_options(settings),
        )
        options["db"] = settings.redis_db
        if settings.redis_uses_tls:
            options["ssl"] = True  # the primary's pool then makes TLS connections
        client = cast(
            StoreClient,
            sentinel.master_for(settings.redis_sentinel_master, redis_class=StoreClient, **options),
        )
    else:
        assert settings.redis_url is not None  # require_redis
        url_options = _from_url_options(settings, options)
        client = cast(StoreClient, StoreClient.from_url(settings.redis_url, **url_options))
    client.min_replicas = settings.redis_min_replicas
    client.replica_timeout_ms = max(1, int(settings.redis_replica_timeout * 1000))
    return client


def _credentials(settings: Settings) -> dict[str, Any]:
    credentials: dict[str, Any] = {}
    if settings.redis_username is not None:
        credentials["username"] = settings.redis_username
    if settings.redis_password is not None:
        credentials["password"] = settings.redis_password
    return credentials


def _from_url_options(settings: Settings, options: dict[str, Any]) -> dict[str, Any]:
    """`options` without the credentials a URL names itself (the URL's own win)."""
    assert settings.redis_url is not None
    parts = urlsplit(settings.redis_url)
    given = dict(options)
    if parts.password is not None:
        given.pop("password", None)
    if parts.username:
        given.pop("username", None)
    if settings.redis_tls and parts.scheme == "redis":
        # from_url takes the connection class from the scheme, not from `ssl=True`
        given["connection_class"] = redis.SSLConnection
    return given


def _sentinel_options(settings: Settings) -> dict[str, Any]:
    """The connections to the sentinels themselves: their own password, the same TLS."""
    options: dict[str, Any] = {"socket_connect_timeout": 2, "socket_timeout": 2}
    if settings.redis_sentinel_password is not None:
        options["password"] = settings.redis_sentinel_password
    if settings.redis_uses_tls:
        options.update(ssl=True, **settings.redis_tls_options())
    return options


def required_replicas(client: Redis) -> int:
    """The replicas that must hold a write of `client`'s (its write concern; 0: none)."""
    wanted: int = getattr(client, "min_replicas", 0)
    return wanted


def confirm_replicas(client: Redis, *, what: str) -> None:
    """Return once the replicas the client's write concern asks for hold every write this
    process made on `client` so far; `NotReplicatedError` when they do not in time.

    WAIT answers for its own connection's last write, and a pool spreads writes over many
    connections, so the probe is written on the WAIT's connection after the caller's writes
    were answered: replicas apply the primary's stream in order, and one that holds the
    probe holds them. (The one gap: a whole failover between the writes' answer and the
    probe, which takes the sentinels' down-after-milliseconds at least, would confirm the
    probe on the new primary. A pooled connection to the old one fails instead.)
    """
    wanted = required_replicas(client)
    if wanted <= 0:
        return
    timeout_ms: int = getattr(client, "replica_timeout_ms", 1000)
    with translate_errors():
        pipe = client.pipeline(transaction=False)
        pipe.incr(REPLICATION_PROBE)
        pipe.wait(wanted, timeout_ms)
        acknowledged = int(pipe.execute()[1])
    if acknowledged < wanted:
        raise NotReplicatedError(
            f"{what}: {acknowledged} of the {wanted} replicas required confirmed the write "
            f"within {timeout_ms} ms (RELAY_REDIS_MIN_REPLICAS); it may be lost in a failover"
        )


# answers of a primary being demoted, of a replica not yet promoted or still loading
_SWITCHING: Final = (
    redis.exceptions.ReadOnlyError,
    redis.exceptions.MasterDownError,
    redis.exceptions.TryAgainError,
)


# answers of a Redis that refuses a write until something changes (memory freed, a replica
# back, a disk writable again, a long script done), also when a Lua script relays them
# (redis-py strips the code of the plain OOM answer into OutOfMemoryError)
_REFUSING: Final = re.compile(r"\b(OOM|NOREPLICAS|MISCONF|BUSY|LOADING)\b")


@contextmanager
def translate_errors() -> Iterator[None]:
    """Turn redis-py exceptions into `StoreError`s (the store's only boundary)."""
    try:
        yield
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        raise StoreUnavailableError(f"Redis is unreachable: {exc}") from exc
    except _SWITCHING as exc:  # a failover under way: the same as unreachable, for now
        raise StoreUnavailableError(f"Redis is switching primaries: {exc}") from exc
    except redis.ResponseError as exc:
        if isinstance(exc, redis.exceptions.OutOfMemoryError) or _REFUSING.search(str(exc)):
            raise StoreUnavailableError(f"Redis refuses writes for now: {exc}") from exc
        raise StoreError(f"Redis error: {exc}") from exc
    except redis.RedisError as exc:
        raise StoreError(f"Redis error: {exc}") from exc


@dataclass(frozen=True)
class Replication:
    """What the primary says of its replicas, and how many the client's writes need."""

    role: str  # "master" on a primary
    replicas: list[str]  # "host:port" of each replica connected, online
    lag_bytes: list[int]  # per replica: the primary's replication offset minus its own
    required: int  # RELAY_REDIS_MIN_REPLICAS

    @property
    def short(self) -> int:
        """Replicas missing for writes to be acknowledged (0: enough)."""
        return max(0, self.required - len(self.replicas))


def replication(client: Redis) -> Replication:
    """The primary's INFO replication, for `relay status` and /readyz."""
    with translate_errors():
        info = client.info("replication")
    offset = int(info.get("master_repl_offset", 0))
    replicas, lags = [], []
    for index in range(int(info.get("connected_slaves", 0))):
        replica = info.get(f"slave{index}")
        if isinstance(replica, dict) and replica.get("state") == "online":
            replicas.append(f"{replica.get('ip')}:{replica.get('port')}")
            lags.append(max(0, offset - int(replica.get("offset", 0))))
    role = str(info.get("role", ""))
    return Replication(role, replicas, lags, required=required_replicas(client))


def check_durability(client: Redis) -> list[str]:
    """Warnings when Redis is configured to lose acknowledged data."""
    warnings: list[str] = []
    # INFO, not CONFIG GET: hardened servers (the embedded one, managed ones) disable CONFIG
    with translate_errors():
        aof_enabled = client.info("persistence").get("aof_enabled")
        policy = client.info("memory").get("maxmemory_policy", "noeviction")
    if str(aof_enabled) != "1":
        warnings.append("Redis AOF is off (appendonly no): a Redis crash can lose events")
    if policy != "noeviction":
        warnings.append(f"Redis maxmemory-policy is {policy}: it may evict events; use noeviction")
    for warning in warnings:
        log.warning(warning)
    return warnings
