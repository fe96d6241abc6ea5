"""Group commit for `POST /api/events`: one Redis script call for the requests in flight.

Each ingest request used to cost the API two blocking Redis round trips on the event loop
(find the token, then record), and Redis the fixed cost of two script calls. Here a
request hands its prepared events (and its token's hash) to the process's writer and
awaits the outcome; the loop serves other requests meanwhile. A writer thread takes every
request waiting, records them with one call of the record script (which checks each
request's token itself, relay/store/lua/record.lua) and hands each request its own
outcome. Under load a call carries several requests; alone, a request goes at once. Two
threads take turns, so that Redis has the next call while one thread is busy with the
answer of the last (batches of 100 events: about 18,800 -> 20,500 events/s). The API's
runtime (relay/api/runtime.py) owns the process's writer and closes it at shutdown.

Nothing about durability changes: a request is answered only after the script that
recorded its events has returned, and each request stays all or nothing. With
RELAY_REDIS_MIN_REPLICAS, one WAIT per call (not per request) confirms the replicas hold it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
from collections.abc import Sequence
from typing import Final

from relay.errors import NotReplicatedError, StoreError
from relay.settings import Settings
from relay.store import events as event_store
from relay.store.client import Redis, confirm_replicas
from relay.store.events import DAY_MS, Recorded, RecordRequest, Refused
from relay.store.tokens import CAPABILITIES, Capability

log = logging.getLogger(__name__)

# a call's events (a request is never split: one of 1000 events goes alone)
MAX_EVENTS_PER_CALL: Final = 1000
# calls in flight: while one thread reads a call's answer and packs the next call,
# Redis already runs the other's script instead of waiting (scripts run one at a time)
WRITER_THREADS: Final = 2
INGEST_ROLES: Final = tuple(
    sorted(role.value for role, allowed in CAPABILITIES.items() if Capability.INGEST in allowed)
)

Outcome = Recorded | Refused
_Waiting = tuple[RecordRequest, "asyncio.Future[Outcome]", asyncio.AbstractEventLoop]


class IngestWriter:
    """Records requests' events from two threads, as many requests per script call as wait."""

    def __init__(self, client: Redis, *, dedupe_ttl_ms: int) -> None:
        self._client = client
        self._ttl = dedupe_ttl_ms
        self._queue: queue.SimpleQueue[_Waiting | None] = queue.SimpleQueue()
        self._threads = [
            threading.Thread(target=self._run, name=f"relay-ingest-{n}", daemon=True)
            for n in range(WRITER_THREADS)
        ]
        for thread in self._threads:
            thread.start()

    def close(self, timeout: float = 5.0) -> None:
        """Record what is waiting, then stop the threads."""
        for _ in self._threads:
            self._queue.put(None)
        for thread in self._threads:
            thread.join(timeout)

    async def record(self, request: RecordRequest) -> Outcome:
        """Record one request's events (after its token checks out); its outcome."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Outcome] = loop.create_future()
        self._queue.put((request, future, loop))
        return await future

    def _run(self) -> None:
        held: _Waiting | None = None  # taken from the queue, over the last call's cap
        while True:
            group, held = self._next_group(held)
            if not group:
                return  # closed
            try:
                outcomes: Sequence[Outcome | BaseException] = event_store.record_requests(
                    self._client,
                    [request for request, _, _ in group],
                    dedupe_ttl_ms=self._ttl,
                    allowed_roles=INGEST_ROLES,
                )
                outcomes = _replicated(self._client, outcomes)
            except Exception as exc:  # StoreError for all of them (503); a bug, 500
                if not isinstance(exc, StoreError):
                    log.exception("recording %d ingest requests failed", len(group))
                outcomes = [exc] * len(group)
            _resolve(group, outcomes)

    def _next_group(self, held: _Waiting | None) -> tuple[list[_Waiting], _Waiting | None]:
        """The requests waiting (blocks until there is one; none once closed), and the one
        taken that did not fit."""
        first = held if held is not None else self._queue.get()
        if first is None:
            return [], None
        group, events = [first], first[0].count
        while events < MAX_EVENTS_PER_CALL:
            try:
                waiting = self._queue.get_nowait()
            except queue.Empty:
                break
            if waiting is None:
                self._queue.put(None)  # closing: this call first, then stop
                break
            if events + waiting[0].count > MAX_EVENTS_PER_CALL:
                return group, waiting  # first of the next call
            group.append(waiting)
            events += waiting[0].count
        return group, None


def _replicated(
    client: Redis, outcomes: Sequence[Outcome | BaseException]
) -> Sequence[Outcome | BaseException]:
    """The outcomes, once the replicas that the client's write concern asks for hold the
    recorded events (RELAY_REDIS_MIN_REPLICAS); unconfirmed, each recorded request's outcome
    is the error (503: the producer sends again, and dedupe by its event ids keeps one)."""
    if not any(isinstance(outcome, Recorded) for outcome in outcomes):
        return outcomes
    try:
        confirm_replicas(client, what="ingest")
    except NotReplicatedError as exc:
        log.warning("%s", exc)
        return [exc if isinstance(outcome, Recorded) else outcome for outcome in outcomes]
    return outcomes


def _resolve(group: list[_Waiting], outcomes: Sequence[Outcome | BaseException]) -> None:
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Outcome], object]]] = {}
    for (_, future, loop), outcome in zip(group, outcomes, strict=True):
        by_loop.setdefault(loop, []).append((future, outcome))
    for loop, settled in by_loop.items():
        # one wake-up per loop and call, not per request; a closed loop has nobody waiting
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(_settle, settled)


def _settle(settled: list[tuple[asyncio.Future[Outcome], object]]) -> None:
    for future, outcome in settled:
        if future.done():  # the request was cancelled (client gone); its events are recorded
            continue
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)  # type: ignore[arg-type]


def dedupe_ttl_ms(settings: Settings) -> int:
    """How long a producer's event id is remembered for dedupe (the retention period)."""
    return int(settings.retention_days * DAY_MS)
