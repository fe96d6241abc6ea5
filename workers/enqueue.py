"""Enqueue tasks by name: the one module the API imports from `workers`."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

from celery import Celery

from relay.settings import Settings
from workers import names


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
    if delivery_ids:
        _producer(settings.require_redis_url()).send_task(names.DELIVER, args=[list(delivery_ids)])
