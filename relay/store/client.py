"""Redis connections, and the one place where redis-py's exceptions become store errors."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import redis

from relay.errors import StoreError, StoreUnavailableError

log = logging.getLogger(__name__)

Redis = redis.Redis


def connect(url: str) -> Redis:
    """A new pooled client for `url` (decoded strings). The caller owns it: a process's
    runtime (relay/api/runtime.py, workers/runtime.py) keeps one and closes it at exit."""
    return redis.Redis.from_url(
        url,
        decode_responses=True,
        socket_connect_timeout=5,
        socket_timeout=10,
        health_check_interval=30,
        retry_on_timeout=True,
    )


@contextmanager
def translate_errors() -> Iterator[None]:
    """Turn redis-py exceptions into `StoreError`s (the store's only boundary)."""
    try:
        yield
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        raise StoreUnavailableError(f"Redis is unreachable: {exc}") from exc
    except redis.RedisError as exc:
        raise StoreError(f"Redis error: {exc}") from exc


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
