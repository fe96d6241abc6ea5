"""Many webhook POSTs in flight from one worker process: one asyncio loop in a thread.

Celery's pool threads run the deliver tasks; each hands its batch (claim, render, sign,
send, record: `workers.dispatch.deliver_batch`) to this loop and waits for it. The loop
keeps up to `delivery_concurrency` sends in flight over keep-alive connections shared by
every task of the process. Slow receivers cost a coroutine, not a thread or a process.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from relay.settings import Settings
from workers.http import SendResult
from workers.lean_http import LeanClient

_T = TypeVar("_T")


@dataclass(frozen=True)
class OutboundRequest:
    """One signed POST, ready to send."""

    url: str
    body: bytes
    headers: dict[str, str]


# sends a batch of requests concurrently; one result per request, in order
SendAll = Callable[[Sequence[OutboundRequest]], Awaitable[list[SendResult]]]


class LoopSender:
    """Runs delivery batches and their sends on one event loop in a daemon thread.

    Sends go through `workers.lean_http.LeanClient` (httptools over asyncio streams): httpx's
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
        self._slots = self.run(self._semaphore())

    def run(self, coroutine: Coroutine[Any, Any, _T]) -> _T:
        """Run `coroutine` on the sender's loop and wait for its result (from another thread)."""
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()

    def send_many(self, requests: Sequence[OutboundRequest]) -> list[SendResult]:
        """`send_all` for callers outside the loop."""
        return self.run(self.send_all(requests))

    async def send_all(self, requests: Sequence[OutboundRequest]) -> list[SendResult]:
        """Send concurrently, at most `delivery_concurrency` in flight per process."""
        return list(await asyncio.gather(*(self._send_one(request) for request in requests)))

    def close(self) -> None:
        """Close every connection and stop the loop."""
        if not self._loop.is_running():
            return
        self.run(self._client.aclose())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    async def _semaphore(self) -> asyncio.Semaphore:
        # created on the loop: it belongs to it
        return asyncio.Semaphore(self._settings.delivery_concurrency)

    async def _send_one(self, request: OutboundRequest) -> SendResult:
        async with self._slots:
            return await self._client.send(
                url=request.url, body=request.body, headers=request.headers
            )


_lock = threading.Lock()
_shared: LoopSender | None = None


def shared_sender(settings: Settings) -> LoopSender:
    """The process's sender, started on first use (after a prefork fork, in the child)."""
    global _shared
    with _lock:
        if _shared is None:
            _shared = LoopSender(settings)
        return _shared


def close_shared_sender() -> None:
    global _shared
    with _lock:
        sender, _shared = _shared, None
    if sender is not None:
        sender.close()


def _forget_after_fork() -> None:
    # the loop thread does not exist in a forked child; start a new one there
    global _shared, _lock
    _shared = None
    _lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_after_fork)
