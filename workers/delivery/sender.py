"""Many webhook POSTs in flight from one worker process: one asyncio loop in a thread.

Celery's pool threads run the deliver tasks; each hands its batch (claim, render, sign,
send, record: `workers.delivery.batch.deliver_batch`) to this loop and waits until the batch's
sends hold a slot (`start`), not until they end: a receiver that takes 15 s to time out
holds a slot, never a pool thread, so the threads stay free for the other subscriptions'
tasks. The loop keeps up to `delivery_concurrency` sends in flight over keep-alive
connections shared by every task of the process; when every slot is taken, the threads
wait, which is the worker's back-pressure. Slow receivers cost a coroutine, not a thread
or a process.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from relay.settings import Settings
from workers.http_client import LeanClient, SendResult

log = logging.getLogger(__name__)

_T = TypeVar("_T")
# seconds a closing sender waits for batches still sending, beyond the delivery timeout
DRAIN_GRACE = 5.0


@dataclass(frozen=True)
class OutboundRequest:
    """One request, ready to send (a signed webhook POST, or an integration's request)."""

    url: str
    body: bytes
    headers: dict[str, str]
    method: str = "POST"
    verify_tls: bool = True
    # the URL is its subscription's `relay listen` origin: loopback allowed (relay.destinations)
    local_listener: bool = False


# sends a batch of requests concurrently; one result per request, in order
SendAll = Callable[[Sequence[OutboundRequest]], Awaitable[list[SendResult]]]
# a delivery batch to run on the loop, given the send function to use
Batch = Callable[[SendAll], Coroutine[Any, Any, object]]
# resolved once a batch's sends all hold a slot (or it ended): what `start` waits for
Admission = concurrent.futures.Future[None]


class LoopSender:
    """Runs delivery batches and their sends on one event loop in a daemon thread.

    Sends go through `workers.http_client.LeanClient` (httptools over asyncio streams): httpx's
    async stack cost several times the relay's own work per delivery in CPU.
    """

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._client = LeanClient(settings)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="relay-sender", daemon=True
        )
        self._thread.start()
        self._batches: set[asyncio.Task[object]] = set()  # touched on the loop only
        self._slots = self.run(self._semaphore())

    def run(self, coroutine: Coroutine[Any, Any, _T]) -> _T:
        """Run `coroutine` on the sender's loop and wait for its result (from another thread)."""
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()

    def start(self, batches: Sequence[Batch]) -> None:
        """Run the batches on the loop; return (from another thread) once each of them has
        every send it makes holding a slot, or has finished. An error raised before that is
        raised here; one raised later is logged (the deliveries' leases bring them back)."""
        admissions = [Admission() for _ in batches]
        for batch, admitted in zip(batches, admissions, strict=True):
            self._loop.call_soon_threadsafe(self._launch, batch, admitted)
        for admitted in admissions:
            admitted.result()

    def spawn(self, batch: Batch) -> None:
        """Run a batch on the loop without waiting for it (call on the loop or off it)."""
        self._loop.call_soon_threadsafe(self._launch, batch, None)

    def send_many(self, requests: Sequence[OutboundRequest]) -> list[SendResult]:
        """`send_all` for callers outside the loop."""
        return self.run(self.send_all(requests))

    async def send_all(self, requests: Sequence[OutboundRequest]) -> list[SendResult]:
        """Send concurrently, at most `delivery_concurrency` in flight per process."""
        return list(await asyncio.gather(*(self._send_one(request) for request in requests)))

    def close(self) -> None:
        """Let running batches finish (up to the delivery timeout and a grace), close every
        connection and stop the loop."""
        if not self._loop.is_running():
            return
        self.run(self._drain(self._settings.delivery_timeout + DRAIN_GRACE))
        self.run(self._client.aclose())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    async def _semaphore(self) -> asyncio.Semaphore:
        # created on the loop: it belongs to it
        return asyncio.Semaphore(self._settings.delivery_concurrency)

    def _launch(self, batch: Batch, admitted: Admission | None) -> None:
        task: asyncio.Task[object] = self._loop.create_task(self._run_batch(batch, admitted))
        self._batches.add(task)
        task.add_done_callback(self._batches.discard)

    async def _run_batch(self, batch: Batch, admitted: Admission | None) -> object:
        async def send(requests: Sequence[OutboundRequest]) -> list[SendResult]:
            return await self._send_admitted(requests, admitted)

        try:
            result = await batch(send)
        except BaseException as exc:
            if admitted is not None and not admitted.done():
                admitted.set_exception(exc)  # the waiting task raises it
            elif isinstance(exc, Exception):
                log.exception("delivery batch failed after its sends started")
            if not isinstance(exc, Exception):
                raise
            return None
        _admit(admitted)
        return result

    async def _send_admitted(
        self, requests: Sequence[OutboundRequest], admitted: Admission | None
    ) -> list[SendResult]:
        waiting = len(requests)

        def one_admitted() -> None:
            nonlocal waiting
            waiting -= 1
            if waiting == 0:
                _admit(admitted)

        if waiting == 0:
            _admit(admitted)
        sends = (self._send_one(request, one_admitted) for request in requests)
        return list(await asyncio.gather(*sends))

    async def _send_one(
        self, request: OutboundRequest, on_slot: Callable[[], None] | None = None
    ) -> SendResult:
        async with self._slots:
            if on_slot is not None:
                on_slot()
            return await self._client.send(
                url=request.url,
                body=request.body,
                headers=request.headers,
                method=request.method,
                verify_tls=request.verify_tls,
                local_listener=request.local_listener,
            )

    async def _drain(self, timeout: float) -> None:
        if self._batches:
            await asyncio.wait(set(self._batches), timeout=timeout)


def _admit(admitted: Admission | None) -> None:
    if admitted is not None and not admitted.done():
        admitted.set_result(None)
