"""Delivery tasks: fanout, deliver, pump, sweep. Thin: ids in, a plain function does the work.

Every task is idempotent and runs with `acks_late` (set on the app): a task redelivered
after a crash finds its work done (deterministic delivery ids, claims with leases) or
finishes it. Durable state is in Redis, so a task lost with its worker costs a delay of
at most one lease (the pump finds its deliveries due again), never a delivery.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Sequence
from typing import Any, TypeVar

from celery.signals import worker_process_shutdown, worker_shutdown

from relay.settings import Settings
from relay.store.client import Redis, connect
from workers import dispatch, fanout, names
from workers import pump as pumping
from workers.celery_app import app, settings_of
from workers.enqueue import DELIVER_BATCH
from workers.sender import close_shared_sender, shared_sender
from workers.snapshot import SubscriptionCache

_T = TypeVar("_T")

_cache_lock = threading.Lock()
_caches: dict[frozenset[str], SubscriptionCache] = {}


def _settings() -> Settings:
    return settings_of(app)


def _client(settings: Settings) -> Redis:
    return connect(settings.require_redis_url())


def _cache(settings: Settings) -> SubscriptionCache:
    with _cache_lock:
        key = settings.critical_set
        if key not in _caches:
            _caches[key] = SubscriptionCache(critical_environments=key)
        return _caches[key]


def enqueue_deliveries(ids: Sequence[str]) -> None:
    """Send deliver tasks for `ids`, `DELIVER_BATCH` ids per task."""
    for start in range(0, len(ids), DELIVER_BATCH):
        app.send_task(names.DELIVER, args=[list(ids[start : start + DELIVER_BATCH])])


@app.task(name=names.FANOUT)  # type: ignore[untyped-decorator]
def fanout_task(event_ids: list[int]) -> int:
    """Create the deliveries of recorded events and attempt them (or enqueue); how many."""
    settings = _settings()
    client = _client(settings)
    result = fanout.fan_out_and_deliver(
        client,
        event_ids=[int(i) for i in event_ids],
        cache=_cache(settings),
        settings=settings,
        now_ms=dispatch.now_ms(),
        deliver=lambda ids: _deliver(settings, client, ids),
        enqueue=enqueue_deliveries,
    )
    return len(result.delivery_ids)


@app.task(name=names.DELIVER)  # type: ignore[untyped-decorator]
def deliver_task(delivery_ids: list[str]) -> int:
    """Attempt these deliveries (those due and unclaimed); how many were attempted."""
    settings = _settings()
    return _deliver(settings, _client(settings), [str(i) for i in delivery_ids])


def _deliver(settings: Settings, client: Redis, ids: list[str]) -> int:
    sender = shared_sender(settings)
    batches = [
        dispatch.deliver_batch(
            client,
            ids=ids[start : start + DELIVER_BATCH],
            settings=settings,
            cache=_cache(settings),
            send=sender.send_all,
        )
        for start in range(0, len(ids), DELIVER_BATCH)
    ]
    done = sender.run(_gather(batches))
    return sum(1 for batch in done for item in batch if item.result is not None)


async def _gather(batches: list[Coroutine[Any, Any, _T]]) -> list[_T]:
    return list(await asyncio.gather(*batches))


@app.task(name=names.PUMP)  # type: ignore[untyped-decorator]
def pump_task() -> int:
    """Enqueue the deliveries that are due."""
    settings = _settings()
    return pumping.pump(_client(settings), settings=settings, enqueue=enqueue_deliveries)


@app.task(name=names.SWEEP)  # type: ignore[untyped-decorator]
def sweep_task() -> dict[str, int]:
    """Heal lost fan-outs, forget ended leases, trim dead letters."""
    settings = _settings()
    return pumping.sweep(
        _client(settings), settings=settings, cache=_cache(settings), enqueue=enqueue_deliveries
    )


@worker_process_shutdown.connect  # type: ignore[untyped-decorator]
@worker_shutdown.connect  # type: ignore[untyped-decorator]
def _close_sender(**_: Any) -> None:
    close_shared_sender()
