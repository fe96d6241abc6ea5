"""Pulling events from Unleash servers (what their webhook dropped), and retention.

The beat runs both as tasks (workers/tasks.py: `relay.pull_sources`, `relay.retention`).

A pull reads a source's event search newest first until it reaches the source's cursor
(the highest producer id pulled before) or events older than the retention window, then
records what it read oldest first under the source's name, so events its webhook already
delivered with `?source=<name>` are deduped rather than recorded twice. One worker pulls
a source at a time (a Redis lock); dedupe would make a double pull harmless anyway.
Each page is read through `workers.pull.unleash_client` (destination guard at connect, one
deadline per request, a capped and streamed body); how each pull ended is kept as the
source's status (`relay sources list`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Final

from pydantic import ValidationError

from relay import tasks
from relay.clock import now_ms, rfc3339_ms
from relay.errors import StoreError
from relay.ingest.unleash_event import validate_event
from relay.observability import metrics
from relay.settings import Settings
from relay.store import events as event_store
from relay.store import locks
from relay.store.client import Redis
from relay.store.events import DAY_MS
from relay.store.retention import trim_events
from relay.store.sources import (
    PullSource,
    advance_cursor,
    get_cursor,
    record_pull,
    sources_to_pull,
)
from workers.http_client import SyncClient
from workers.pull.unleash_client import PullError, PullRefusedError, build_client, fetch_page

log = logging.getLogger(__name__)

PAGE_SIZE: Final = 100
FLUSH_AT: Final = 1000  # record in chunks of this many, so a long backlog is not held in memory
# ids just below the cursor are read again: Unleash may commit ids out of order, so one
# seen after a higher one was pulled is still found (dedupe drops those already recorded)
OVERLAP: Final = 50


def apply_retention(client: Redis, *, settings: Settings) -> int:
    """Trim events created before now minus RELAY_RETENTION_DAYS; how many went."""
    return trim_events(client, older_than_ms=now_ms() - _retention_ms(settings))


@dataclass
class PullResult:
    """What one pull of one source did."""

    source: str
    read: int = 0
    recorded: int = 0
    invalid: int = 0
    cursor: int | None = None
    locked_out: bool = False  # another worker was pulling this source


def pull_all(client: Redis, *, settings: Settings) -> list[PullResult]:
    """Pull each source in turn; a source that fails is logged, kept in its status, and
    does not stop the others."""
    results: list[PullResult] = []
    with build_client(settings) as http:
        for source in sources_to_pull(client, settings=settings):
            try:
                result = pull_source(client, http, source=source, settings=settings)
            except (PullError, StoreError) as exc:
                _failed(client, source, exc)
                continue
            results.append(result)
            if not result.locked_out:
                _record(client, source, error=None)
    return results


def _failed(client: Redis, source: PullSource, exc: PullError | StoreError) -> None:
    # a refused address stays refused until someone changes the setup: say so loudly
    level = logging.ERROR if isinstance(exc, PullRefusedError) else logging.WARNING
    log.log(level, "pull of source %s failed: %s", source.name, exc)
    _record(client, source, error=str(exc))


def _record(client: Redis, source: PullSource, *, error: str | None) -> None:
    try:
        record_pull(client, name=source.name, at_ms=now_ms(), error=error)
    except StoreError as exc:
        log.warning("could not record the pull of source %s: %s", source.name, exc)


def pull_source(
    client: Redis, http: SyncClient, *, source: PullSource, settings: Settings
) -> PullResult:
    """Record what `source` has that the relay has not seen; skipped if another worker is on it."""
    lock_name = f"pull:{source.name}"
    ttl_ms = _lock_ttl_ms(settings)
    token = locks.acquire(client, name=lock_name, ttl_ms=ttl_ms)
    if token is None:
        return PullResult(source=source.name, locked_out=True)
    try:
        return _Pull(client, http, source, settings, lock=(lock_name, token, ttl_ms)).run()
    finally:
        locks.release(client, name=lock_name, token=token)


@dataclass
class _Pull:
    client: Redis
    http: SyncClient
    source: PullSource
    settings: Settings
    lock: tuple[str, str, int]
    cursor: int | None = field(init=False)  # the source's cursor when this pull began
    highest: int | None = field(init=False)  # the highest producer id read so far
    horizon_ms: int = field(init=False)  # events created before this are past retention
    result: PullResult = field(init=False)
    pending: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.cursor = get_cursor(self.client, name=self.source.name)
        self.horizon_ms = now_ms() - _retention_ms(self.settings)
        self.highest = self.cursor
        self.result = PullResult(source=self.source.name, cursor=self.cursor)

    def run(self) -> PullResult:
        offset = 0
        while True:
            page = fetch_page(
                self.http,
                source=self.source,
                offset=offset,
                limit=PAGE_SIZE,
                settings=self.settings,
            )
            self._keep_lock()
            reached_seen = self._take(page.events)
            if len(self.pending) >= FLUSH_AT:
                self._flush()
            offset += len(page.events)
            at_end = not page.events or (page.total is not None and offset >= page.total)
            if reached_seen or at_end:
                break
        self._flush()
        if self.highest is not None and self.highest != self.cursor:
            advance_cursor(self.client, name=self.source.name, to=self.highest)
        self.result.cursor = get_cursor(self.client, name=self.source.name)
        return self.result

    def _take(self, raw_events: list[Any]) -> bool:
        """Keep the page's unseen events; True once it reaches events seen before."""
        for raw in raw_events:
            if self._seen_before(raw):
                return True
            self.result.read += 1
            try:
                self.pending.append(validate_event(raw))
            except ValidationError as exc:
                self.result.invalid += 1
                log.warning("source %s sent an invalid event: %s", self.source.name, exc)
                continue
            producer_id = raw.get("id")
            if isinstance(producer_id, int):
                self.highest = (
                    producer_id if self.highest is None else max(self.highest, producer_id)
                )
        return False

    def _seen_before(self, raw: Any) -> bool:
        if not isinstance(raw, dict):
            return False
        producer_id = raw.get("id")
        cursor = self.cursor
        if isinstance(producer_id, int) and cursor is not None and producer_id <= cursor - OVERLAP:
            return True
        created = raw.get("createdAt")
        try:
            return isinstance(created, str) and rfc3339_ms(created) < self.horizon_ms
        except ValueError:
            return False

    def _flush(self) -> None:
        if not self.pending:
            return
        batch = self.pending[::-1]  # read newest first, recorded oldest first
        recorded = event_store.record(
            self.client,
            events=batch,
            source=self.source.name,
            dedupe_ttl_ms=_retention_ms(self.settings),
        )
        self.pending = []
        self.result.recorded += len(recorded.new_ids)
        metrics.count_recorded(self.source.name, batch, recorded)
        try:
            tasks.fanout(self.settings, recorded.new_ids)
        except Exception:  # the events wait in the outbox; the sweeper re-enqueues them
            log.warning(
                "fanout enqueue failed after a pull",
                exc_info=True,
                extra={"source": self.source.name, "event_ids": recorded.new_ids},
            )

    def _keep_lock(self) -> None:
        name, token, ttl_ms = self.lock
        if not locks.extend(self.client, name=name, token=token, ttl_ms=ttl_ms):
            raise PullError(f"{self.source.name}: lost the pull lock; another worker took over")


def _lock_ttl_ms(settings: Settings) -> int:
    # held across one page fetch at a time, and extended after each
    return int(max(60.0, 3 * (settings.pull_timeout + settings.pull_connect_timeout)) * 1000)


def _retention_ms(settings: Settings) -> int:
    return int(settings.retention_days * DAY_MS)
