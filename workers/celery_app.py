"""The Celery application: configuration, beat schedule and the worker heartbeat.

`celery -A workers.celery_app worker` and `relay worker` load `app` from here; it reads
`RELAY_*` settings, so `RELAY_REDIS_URL` must be set in the worker's environment.
"""

from __future__ import annotations

import gc
import logging
import socket
import threading
from typing import Any

from celery import Celery
from celery.signals import worker_ready, worker_shutdown

from relay import tasks
from relay.errors import StoreError
from relay.settings import Settings, get_settings
from relay.store import heartbeats
from relay.store.client import open_redis

log = logging.getLogger(__name__)

TASK_MODULES = ["workers.tasks"]
HEARTBEAT_EVERY = 5.0

# How a worker and beat ride out a Redis outage with no supervisor to restart them
# (tests/workers/delivery/test_worker_redis_outage.py):
# - max retries None: reconnect forever. Celery's default of 100 reconnects, 2 s apart
#   growing to 30 s, stops the worker ("Unrecoverable error: OperationalError") after
#   about 46 minutes without Redis, and beat at its start likewise.
# - no cancelling on connection loss: the threads pool cannot kill a task, and a worker
#   that tries stops ("Unrecoverable error: NotImplementedError"); Celery 6 makes it the
#   default. A task left running is harmless: tasks are idempotent, and a message it can
#   no longer ack comes back after the visibility timeout.
BROKER_LOSS_SETTINGS: dict[str, Any] = {
    "broker_connection_max_retries": None,
    "worker_cancel_long_running_tasks_on_connection_loss": False,
}


def create_celery(settings: Settings) -> Celery:
    """A Celery app on the settings' Redis (broker only: results are off)."""
    app = Celery("relay", broker=settings.broker_url(), include=TASK_MODULES)
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_ignore_result=True,
        task_serializer="json",
        accept_content=["json"],
        worker_prefetch_multiplier=4,
        broker_connection_retry_on_startup=True,
        **BROKER_LOSS_SETTINGS,
        **tasks.broker_settings(settings),
        worker_hijack_root_logger=False,
        timezone="UTC",
        beat_schedule=_beat_schedule(settings),
    )
    app.conf.relay_settings = settings
    return app


def _beat_schedule(settings: Settings) -> dict[str, dict[str, Any]]:
    return {
        "pump": {"task": tasks.PUMP, "schedule": 1.0},
        "sweep": {"task": tasks.SWEEP, "schedule": 10.0},
        "pull-sources": {"task": tasks.PULL_SOURCES, "schedule": settings.poll_interval},
        "retention": {"task": tasks.RETENTION, "schedule": 3600.0},
    }


# The delivery worker: a pool of threads, each running a task; a deliver task hands its
# batch to the process's one asyncio loop (workers/delivery/sender.py), which keeps up to
# `delivery_concurrency` POSTs in flight, and waits. Threads only wait on batches, so
# there are enough of them for small batches (an event with a few subscriptions) to fill
# the sends in flight. Gossip and mingle only slow start-up (no results, no remote control).
WORKER_POOL = "threads"
WORKER_THREADS = 64
WORKER_ARGS = [
    "worker",
    f"--pool={WORKER_POOL}",
    f"--concurrency={WORKER_THREADS}",
    "--without-gossip",
    "--without-mingle",
]


def worker_args(settings: Settings, *, beat: bool = False) -> list[str]:
    """`celery -A workers.celery_app <these>` for a delivery worker (`--beat`: pump + sweep)."""
    return [*WORKER_ARGS, f"--loglevel={settings.log_level}", *(["--beat"] if beat else [])]


def settings_of(app: Celery) -> Settings:
    """The settings a Celery app was built with."""
    settings: Settings = app.conf.relay_settings
    return settings


app = create_celery(get_settings())  # the settings are read here, once per process

_stop_heartbeat = threading.Event()


def _heartbeat_loop(name: str, settings: Settings) -> None:
    client = open_redis(settings)
    try:
        while not _stop_heartbeat.is_set():
            try:
                heartbeats.beat(client, worker=name)
            except StoreError as exc:
                log.warning("worker heartbeat failed: %s", exc)
            _stop_heartbeat.wait(HEARTBEAT_EVERY)
    finally:
        client.close()  # at worker shutdown: its connections go with the loop


# A delivery allocates many short-lived objects; at Python's default threshold (700) the
# collector ran several times per batch, and each full pass walks every object Celery and
# the connection pool keep for the life of the process. Objects alive once the worker is
# ready are frozen out of collection, and collections run less often (bench/delivery.py).
GC_THRESHOLDS = (20_000, 20, 50)


@worker_ready.connect  # type: ignore[untyped-decorator]
def _tune_gc(**_: Any) -> None:
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


@worker_ready.connect  # type: ignore[untyped-decorator]
def _start_heartbeat(sender: Any = None, **_: Any) -> None:
    settings = settings_of(app)
    if not settings.has_redis:
        return
    name = getattr(sender, "hostname", None) or socket.gethostname()
    threading.Thread(
        target=_heartbeat_loop, args=(name, settings), name="relay-heartbeat", daemon=True
    ).start()


@worker_shutdown.connect  # type: ignore[untyped-decorator]
def _stop_heartbeat_thread(**_: Any) -> None:
    _stop_heartbeat.set()
