"""Blocking Redis calls made for async code, in a bounded pool of threads.

The API's async dependencies and middleware (token checks, the rate limit, failed-login
counts) use redis-py, whose calls block. Made on the event loop, one Redis stall froze
every request of the process, `/healthz` included. Here they run in a pool of their own:
the loop goes on while they wait, and a stalled Redis holds at most `threads` threads
(the requests behind them wait in the queue, bounded by the server's connection limit).
The pool is separate from Starlette's, which serves the sync routes: those can all be
stuck on the same stall, and the token checks of the routes behind them should not wait
for a thread of theirs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Final, ParamSpec, TypeVar

_P = ParamSpec("_P")
_T = TypeVar("_T")

THREADS: Final = 16


class OffLoop:
    """Runs blocking calls in a pool of at most `threads` threads, awaited from any loop."""

    def __init__(self, threads: int = THREADS) -> None:
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="relay-redis")

    async def run(self, call: Callable[_P, _T], /, *args: _P.args, **kwargs: _P.kwargs) -> _T:
        """`call(*args, **kwargs)` in the pool; the loop serves other requests meanwhile."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, partial(call, *args, **kwargs))

    def close(self) -> None:
        """Stop taking calls; the threads end once the calls they run return."""
        self._pool.shutdown(wait=False, cancel_futures=True)
