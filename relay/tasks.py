"""Task names, and publishing by name: all that `relay` outside the CLI knows of the workers.

The workers register their tasks under these names (workers/tasks.py). The API and the
CLI send by name through a bare Celery app, so they import no task code.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

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


def broker_settings(settings: Settings) -> dict[str, Any]:
    """Celery's broker configuration for the settings' Redis (a URL or the sentinels), for
    the workers' app (workers/celery_app.py) and the producers' alike."""
    options: dict[str, Any] = {
        # tasks are short; a task unacked this long is redelivered (idempotent by design)
        "broker_transport_options": {
            "visibility_timeout": 600,
            **settings.broker_transport_options(),
        }
    }
    if settings.redis_uses_tls:
        options["broker_use_ssl"] = settings.redis_tls_options()
    return options


class Producer:
    """Sends tasks by name to one broker over a pool of connections kept until `close`.

    A process that publishes often (the API) keeps one in its runtime; a one-off caller
    uses `fanout` or `deliver` below, which open one for the call.
    """

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        # a bare app: sending by name needs no task code and no worker configuration. It
        # connects at the first send, which needs a Redis (an app may start without)
        self._app = Celery("relay-producer", broker=settings.broker_url(), set_as_current=False)
        self._app.conf.update(broker_settings(settings))

    def fanout(self, event_ids: Sequence[int]) -> None:
        """Ask a worker to fan out these recorded events."""
        if event_ids:
            self._send(FANOUT, list(event_ids))

    def deliver(self, delivery_ids: Sequence[str]) -> None:
        """Ask a worker to attempt these deliveries now."""
        ids = list(delivery_ids)
        for start in range(0, len(ids), DELIVER_BATCH):
            self._send(DELIVER, ids[start : start + DELIVER_BATCH])

    def _send(self, name: str, ids: list[Any]) -> None:
        self._settings.require_redis()  # raises when there is no broker to send to
        self._app.send_task(name, args=[ids])

    def close(self) -> None:
        """Close the broker connections."""
        self._app.close()


@contextmanager
def producer(settings: Settings) -> Iterator[Producer]:
    """A producer for the broker of `settings`, closed on leaving."""
    opened = Producer(settings)
    try:
        yield opened
    finally:
        opened.close()


def fanout(settings: Settings, event_ids: Sequence[int]) -> None:
    """Ask a worker to fan out these recorded events (a one-off: opens a producer)."""
    if event_ids:
        with producer(settings) as sending:
            sending.fanout(event_ids)


def deliver(settings: Settings, delivery_ids: Sequence[str]) -> None:
    """Ask a worker to attempt these deliveries now (a one-off: opens a producer)."""
    if delivery_ids:
        with producer(settings) as sending:
            sending.deliver(delivery_ids)
