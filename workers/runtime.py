"""What one worker process keeps alive, made when the process starts and closed when it ends.

`WorkerRuntime` holds the process's Redis client, the subscription cache and the delivery
sender (its loop thread and keep-alive connections). Celery's signals make and close it
in the process that runs the tasks:

- prefork: `worker_process_init` / `worker_process_shutdown` in each child (the parent
  runs no task and has none, so a fork never copies a sender whose thread it lacks);
- solo: the same signals, sent in the worker's own process;
- threads (what `relay worker` runs) and other pools in one process: `worker_init` /
  `worker_shutdown`, which prefork and solo skip.

Tasks reach it through `current()`.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import concurrency
from celery.signals import (
    worker_init,
    worker_process_init,
    worker_process_shutdown,
    worker_shutdown,
)

from relay.integrations.catalog import load_catalog
from relay.settings import Settings
from relay.store.client import Redis, open_redis
from workers.delivery.sender import LoopSender
from workers.delivery.subscription_cache import SubscriptionCache

log = logging.getLogger(__name__)


class WorkerRuntime:
    """The long-lived objects of one worker process."""

    def __init__(self, settings: Settings) -> None:
        # in the order they depend on each other; `close` undoes it backwards
        self.settings = settings
        self.catalog = load_catalog(settings)  # first: a bad manifest stops the start
        self.redis: Redis = open_redis(settings)
        self.subscriptions = SubscriptionCache(critical_environments=settings.critical_set)
        self.sender = LoopSender(settings)

    def close(self) -> None:
        """Let running deliveries finish (up to the delivery timeout), then close every
        connection."""
        self.sender.close()
        self.redis.close()


class _Process:
    """The runtime of this process, between its open and close signals."""

    runtime: WorkerRuntime | None = None


def current() -> WorkerRuntime:
    """This process's runtime (made when Celery started the process)."""
    runtime = _Process.runtime
    if runtime is None:
        raise RuntimeError("no worker runtime in this process: tasks run in a Celery worker")
    return runtime


def open_runtime(settings: Settings) -> WorkerRuntime:
    """Make this process's runtime (once per process)."""
    if _Process.runtime is not None:
        raise RuntimeError("this process's worker runtime is open already")
    _Process.runtime = WorkerRuntime(settings)
    return _Process.runtime


def close_runtime() -> None:
    """Close this process's runtime, if it has one."""
    runtime, _Process.runtime = _Process.runtime, None
    if runtime is not None:
        runtime.close()


def connect_signals(settings: Settings) -> None:
    """Open and close the runtime of `settings` with the worker's processes."""

    def on_worker_init(sender: Any = None, **_: Any) -> None:
        if not _runs_process_signals(sender):
            open_runtime(settings)

    def on_process_init(**_: Any) -> None:
        open_runtime(settings)

    def on_shutdown(**_: Any) -> None:
        close_runtime()

    # weak=False: the receivers are local functions, kept alive only by the signals
    worker_init.connect(on_worker_init, weak=False)
    worker_process_init.connect(on_process_init, weak=False)
    worker_process_shutdown.connect(on_shutdown, weak=False)
    worker_shutdown.connect(on_shutdown, weak=False)


def _runs_process_signals(worker: Any) -> bool:
    """Whether the worker's pool sends `worker_process_init` (prefork, solo)."""
    pool = concurrency.get_implementation(getattr(worker, "pool_cls", None) or "prefork")
    return pool.__module__ in ("celery.concurrency.prefork", "celery.concurrency.solo")
