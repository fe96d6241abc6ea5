"""Asking the workers to fan out recorded events, from one background thread per API process.

Publishing a Celery task costs more CPU than the rest of an ingest request, so the API
does not publish one per request: `notify` hands the new ids to a sender thread, which
publishes them (`relay.tasks.fanout`) at once when it is idle, and at most once per
`min_interval` under load, merging the ids of the requests in between (so a busy API
publishes a hundred tasks a second, not one per request). Nothing depends on this for
durability: the events
are in the outbox before the API answers, and the sweeper re-enqueues what is left there
(after a failed publish, or a process that died with ids still pending). The API's
runtime (relay/api/runtime.py) owns the process's sender and closes it at shutdown.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import Final

from relay.settings import Settings

log = logging.getLogger(__name__)

MAX_IDS_PER_TASK: Final = 1000
MIN_INTERVAL: Final = 0.05  # seconds between two publishes under load

Publish = Callable[[Settings, Sequence[int]], None]


class FanoutSender:
    """Publishes fanout tasks for ids handed to `notify`, merging while one is in flight."""

    def __init__(
        self,
        settings: Settings,
        *,
        publish: Publish,
        min_interval: float = MIN_INTERVAL,
    ) -> None:
        self._settings = settings
        self._publish = publish
        self._min_interval = min_interval
        self._pending: list[int] = []
        self._idle = False  # the thread waits for ids (rather than publishing or pausing)
        self._busy = False
        self._closing = threading.Event()
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="relay-fanout", daemon=True)
        self._thread.start()

    def notify(self, ids: Sequence[int]) -> None:
        """Queue these event ids for fan-out; returns at once."""
        if ids:
            with self._changed:
                self._pending.extend(ids)
                if self._idle:  # waking a thread that is busy or pausing is wasted work
                    self._changed.notify_all()

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until everything handed over was published (or failed); False on timeout."""
        with self._changed:
            return self._changed.wait_for(lambda: not self._pending and not self._busy, timeout)

    def close(self, timeout: float = 5.0) -> None:
        """Publish what is pending, then stop the thread."""
        self.flush(timeout)
        self._closing.set()
        with self._changed:
            self._changed.notify_all()
        self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            with self._changed:
                self._idle = True
                self._changed.wait_for(lambda: bool(self._pending) or self._closing.is_set())
                self._idle = False
                if not self._pending:
                    return
                batch = self._pending[:MAX_IDS_PER_TASK]
                del self._pending[:MAX_IDS_PER_TASK]
                self._busy = True
            self._send(batch)
            with self._changed:
                self._busy = False
                self._changed.notify_all()
            # ids arriving meanwhile wait for the next publish; close() cuts the pause short
            self._closing.wait(self._min_interval)

    def _send(self, ids: list[int]) -> None:
        try:
            self._publish(self._settings, ids)
        except Exception:  # the events wait in the outbox; the sweeper re-enqueues them
            log.warning(
                "fanout enqueue failed for %d events",
                len(ids),
                exc_info=True,
                extra={"event_ids": ids},
            )
