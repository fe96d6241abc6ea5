"""The Celery tasks: fanout, deliver, pump, sweep, pull sources, retention. Thin: ids in, a
plain function does the work.

Every task is idempotent and runs with `acks_late` (set on the app): a task redelivered
after a crash finds its work done (deterministic delivery ids, claims with leases) or
finishes it. Durable state is in Redis, so a task lost with its worker costs a delay of
at most one lease (the pump finds its deliveries due again), never a delivery. A deliver
task (and a fan-out's own first attempts) ends once its sends hold a slot on the sender's
loop, not when they end: a receiver that hangs holds a slot of its subscription, never a
pool thread (workers/delivery/sender.py). The sender, the subscription cache and the Redis
client are the process's runtime's (workers/runtime.py).
"""

from __future__ import annotations

import logging
from collections.abc import Coroutine, Sequence
from typing import Any

from relay import clock, tasks
from relay.settings import Settings
from relay.store.client import Redis
from workers.celery_app import app, settings_of
from workers.delivery import batch, fanout
from workers.delivery import pump as pumping
from workers.delivery.sender import Batch, LoopSender, SendAll
from workers.pull.pull_sources import apply_retention, pull_all
from workers.runtime import WorkerRuntime, connect_signals, current

log = logging.getLogger(__name__)

# each process that runs these tasks makes its runtime (sender, caches, Redis) at start and
# closes it at exit (workers/runtime.py says which signal for which pool)
connect_signals(settings_of(app))


def enqueue_deliveries(ids: Sequence[str]) -> None:
    """Send deliver tasks for `ids`, `tasks.DELIVER_BATCH` ids per task."""
    for start in range(0, len(ids), tasks.DELIVER_BATCH):
        app.send_task(tasks.DELIVER, args=[list(ids[start : start + tasks.DELIVER_BATCH])])


@app.task(name=tasks.FANOUT)  # type: ignore[untyped-decorator]
def fanout_task(event_ids: list[int]) -> int:
    """Create the deliveries of recorded events and attempt them (or enqueue); how many."""
    runtime = current()
    result = fanout.fan_out_and_deliver(
        runtime.redis,
        event_ids=[int(i) for i in event_ids],
        cache=runtime.subscriptions,
        settings=runtime.settings,
        now_ms=clock.now_ms(),
        deliver=lambda ids: _deliver(runtime, ids),
        enqueue=enqueue_deliveries,
    )
    return len(result.delivery_ids)


@app.task(name=tasks.DELIVER)  # type: ignore[untyped-decorator]
def deliver_task(delivery_ids: list[str]) -> int:
    """Attempt these deliveries (those due and unclaimed); returns once their sends started."""
    return _deliver(current(), [str(i) for i in delivery_ids])


def _deliver(runtime: WorkerRuntime, ids: list[str]) -> int:
    """Hand the ids to the sender's loop in batches; returns once their sends hold slots."""
    runtime.sender.start(
        [
            _batch(runtime, ids[s : s + tasks.DELIVER_BATCH])
            for s in range(0, len(ids), tasks.DELIVER_BATCH)
        ]
    )
    return len(ids)


def _batch(runtime: WorkerRuntime, ids: list[str]) -> Batch:
    sender: LoopSender = runtime.sender
    settings: Settings = runtime.settings
    client: Redis = runtime.redis

    def handoff(promoted: list[str]) -> None:
        # slots this batch freed, handed to waiting deliveries of the same subscriptions:
        # attempted here and now, not at the pump's next beat
        for start in range(0, len(promoted), tasks.DELIVER_BATCH):
            sender.spawn(_batch(runtime, promoted[start : start + tasks.DELIVER_BATCH]))

    def announce(event_ids: list[int]) -> None:
        # relay's own events (workers/delivery/operational.py): fanned out like any other
        app.send_task(tasks.FANOUT, args=[event_ids])

    def attempts(send: SendAll) -> Coroutine[Any, Any, object]:
        return batch.deliver_batch(
            client,
            ids=ids,
            settings=settings,
            cache=runtime.subscriptions,
            catalog=runtime.catalog,
            send=send,
            handoff=handoff,
            announce=announce,
        )

    return attempts


@app.task(name=tasks.PUMP)  # type: ignore[untyped-decorator]
def pump_task() -> int:
    """Enqueue the deliveries that are due, and the waiting ones that may go now."""
    runtime = current()
    return pumping.pump(
        runtime.redis,
        settings=runtime.settings,
        enqueue=enqueue_deliveries,
        cache=runtime.subscriptions,
    )


@app.task(name=tasks.SWEEP)  # type: ignore[untyped-decorator]
def sweep_task() -> dict[str, int]:
    """Heal lost fan-outs, forget ended leases, trim dead letters."""
    runtime = current()
    return pumping.sweep(
        runtime.redis,
        settings=runtime.settings,
        cache=runtime.subscriptions,
        enqueue=enqueue_deliveries,
    )


@app.task(name=tasks.PULL_SOURCES)  # type: ignore[untyped-decorator]
def pull_sources_task() -> None:
    """Pull every configured source once."""
    runtime = current()
    pull_all(runtime.redis, settings=runtime.settings)


@app.task(name=tasks.RETENTION)  # type: ignore[untyped-decorator]
def retention_task() -> None:
    """Trim events older than the retention window."""
    runtime = current()
    trimmed = apply_retention(runtime.redis, settings=runtime.settings)
    # idle hours trim nothing: said at DEBUG, so an idle relay prints nothing at all
    log.log(logging.INFO if trimmed else logging.DEBUG, "retention trimmed %d events", trimmed)
