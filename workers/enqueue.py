"""Enqueue tasks by name: the one module the API imports from `workers`."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

from celery import Celery

from relay.settings import Settings
from workers import names

# delivery ids per deliver task: a batch is claimed, sent concurrently and recorded together
DELIVER_BATCH = 50


@lru_cache(maxsize=4)
def _producer(broker_url: str) -> Celery:
    # a bare app: sending by name needs no task code and no worker configuration
    return Celery("relay-producer", broker=broker_url, set_as_current=False)


def fanout(settings: Settings, event_ids: Sequence[int]) -> None:
    """Ask a worker to fan out these recorded events."""
    if event_ids:
        _producer(settings.require_redis_url()).send_task(names.FANOUT, args=[list(event_ids)])


def deliver(settings: Settings, delivery_ids: Sequence[str]) -> None:
    """Ask a worker to attempt these deliveries now."""
    ids = list(delivery_ids)
    for start in range(0, len(ids), DELIVER_BATCH):
        chunk = ids[start : start + DELIVER_BATCH]
        _producer(settings.require_redis_url()).send_task(names.DELIVER, args=[chunk])
