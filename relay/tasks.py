"""Task names, and publishing by name: all that `relay` outside the CLI knows of the workers.

The workers register their tasks under these names (workers/tasks.py). The API and the
CLI send by name through a bare Celery app, so they import no task code.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

from celery import Celery

from relay.settings import Settings

FANOUT = "relay.fanout"
DELIVER = "relay.deliver"
PUMP = "relay.pump"
SWEEP = "relay.sweep"
PULL_SOURCES = "relay.pull_sources"
RETENTION = "relay.retention"

# delivery ids per deliver task: a batch is claimed, sent concurrently and recorded together
DELIVER_BATCH = 50


@lru_cache(maxsize=4)
def _producer(broker_url: str) -> Celery:
    # a bare app: sending by name needs no task code and no worker configuration
    return Celery("relay-producer", broker=broker_url, set_as_current=False)


def fanout(settings: Settings, event_ids: Sequence[int]) -> None:
    """Ask a worker to fan out these recorded events."""
    if event_ids:
        _producer(settings.require_redis_url()).send_task(FANOUT, args=[list(event_ids)])


def deliver(settings: Settings, delivery_ids: Sequence[str]) -> None:
    """Ask a worker to attempt these deliveries now."""
    ids = list(delivery_ids)
    for start in range(0, len(ids), DELIVER_BATCH):
        chunk = ids[start : start + DELIVER_BATCH]
        _producer(settings.require_redis_url()).send_task(DELIVER, args=[chunk])
