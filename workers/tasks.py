"""Delivery tasks: fanout, deliver, pump, sweep. Thin: ids in, a plain function does the work.

Every task is idempotent and runs with `acks_late` (set on the app): a task redelivered
after a crash finds its work done (deterministic delivery ids, claims with leases) or
finishes it. Durable state is in Redis, so a task lost with its worker costs a delay of
at most one lease (the pump finds its deliveries due again), never a delivery. A deliver
task (and a fan-out's own first attempts) ends once its sends hold a slot on the sender's
loop, not when they end: a receiver that hangs holds a slot of its subscription, never a
pool thread (workers/delivery/sender.py).
"""

from __future__ import annotations

import threading
from collections.abc import Coroutine, Sequence
from typing import Any

from celery.signals import worker_process_shutdown, worker_shutdown

from relay import clock, tasks
from relay.settings import Settings
from relay.store.client import Redis, connect
from workers.celery_app import app, settings_of
from workers.delivery import batch, fanout
from workers.delivery import pump as pumping
from workers.delivery.sender import Batch, LoopSender, SendAll, close_shared_sender, shared_sender
from workers.delivery.subscription_cache import SubscriptionCache

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
    """Send deliver tasks for `ids`, `tasks.DELIVER_BATCH` ids per task."""
    for start in range(0, len(ids), tasks.DELIVER_BATCH):
        app.send_task(tasks.DELIVER, args=[list(ids[start : start + tasks.DELIVER_BATCH])])


@app.task(name=tasks.FANOUT)  # type: ignore[untyped-decorator]
def fanout_task(event_ids: list[int]) -> int:
    """Create the deliveries of recorded events and attempt them (or enqueue); how many."""
    settings = _settings()
    client = _client(settings)
    result = fanout.fan_out_and_deliver(
        client,
        event_ids=[int(i) for i in event_ids],
        cache=_cache(settings),
        settings=settings,
        now_ms=clock.now_ms(),
        deliver=lambda ids: _deliver(settings, client, ids),
        enqueue=enqueue_deliveries,
    )
    return len(result.delivery_ids)


@app.task(name=tasks.DELIVER)  # type: ignore[untyped-decorator]
def deliver_task(delivery_ids: list[str]) -> int:
    """Attempt these deliveries (those due and unclaimed); returns once their sends started."""
    settings = _settings()
    return _deliver(settings, _client(settings), [str(i) for i in delivery_ids])


def _deliver(settings: Settings, client: Redis, ids: list[str]) -> int:
    """Hand the ids to the sender's loop in batches; returns once their sends hold slots."""
    sender = shared_sender(settings)
    sender.start(
        [
            _batch(settings, client, sender, ids[s : s + tasks.DELIVER_BATCH])
            for s in range(0, len(ids), tasks.DELIVER_BATCH)
        ]
    )
    return len(ids)


def _batch(settings: Settings, client: Redis, sender: LoopSender, ids: list[str]) -> Batch:
    def handoff(promoted: list[str]) -> None:
        # slots this batch freed, handed to waiting deliveries of the same subscriptions:
        # attempted here and now, not at the pump's next beat
        for start in range(0, len(promoted), tasks.DELIVER_BATCH):
            sender.spawn(
                _batch(settings, client, sender, promoted[start : start + tasks.DELIVER_BATCH])
            )

    def attempts(send: SendAll) -> Coroutine[Any, Any, object]:
        return batch.deliver_batch(
            client, ids=ids, settings=settings, cache=_cache(settings), send=send, handoff=handoff
        )

    return attempts


@app.task(name=tasks.PUMP)  # type: ignore[untyped-decorator]
def pump_task() -> int:
    """Enqueue the deliveries that are due, and the waiting ones that may go now."""
    settings = _settings()
    return pumping.pump(
        _client(settings), settings=settings, enqueue=enqueue_deliveries, cache=_cache(settings)
    )


@app.task(name=tasks.SWEEP)  # type: ignore[untyped-decorator]
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
