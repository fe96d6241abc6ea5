"""Worker heartbeats: workers write them, `/readyz` and `relay status` read them."""

from __future__ import annotations

import time

from relay.clock import now_ms
from relay.store import keys
from relay.store.client import Redis, translate_errors


def beat(client: Redis, *, worker: str) -> None:
    """Record that `worker` is alive now."""
    now = now_ms()
    with translate_errors():
        client.zadd(keys.WORKERS, {worker: now})


def workers_seen(client: Redis, *, within_seconds: float) -> dict[str, int]:
    """Workers with a heartbeat in the last `within_seconds`: name -> last seen (ms)."""
    since = int((time.time() - within_seconds) * 1000)
    with translate_errors():
        # forget workers gone for a day so the set does not grow forever
        client.zremrangebyscore(keys.WORKERS, "-inf", since - 86_400_000)
        rows: list[tuple[str, float]] = client.zrangebyscore(  # type: ignore[assignment]
            keys.WORKERS, since, "+inf", withscores=True
        )
    return {name: int(score) for name, score in rows}
