"""Failed authentications, throttled per client address.

Tokens are long random secrets, but the bootstrap admin token is whatever the operator
chose, and every failed attempt costs a Redis lookup. After `RELAY_AUTH_FAILURE_LIMIT`
failures from one address in a `RELAY_AUTH_FAILURE_WINDOW`, that address gets 429 until
the window ends for the bootstrap admin token (not even compared: a right guess must not
look different from a wrong one) and for any token the store does not hold. A stored
token still works from a blocked address: it is 256 random bits, which no count of
guesses finds, and an address may be a NAT or proxy shared by honest clients whose
requests would otherwise fail with the guesser's. The count is in Redis (one call per
failure, none per success), so every API process adds to it; each process remembers the
addresses it saw go over the limit, so that a blocked address's failures are not counted
again (a blocked request costs the token lookup only). A request without any token (a
misconfigured client, not a guess) is not counted.
"""

from __future__ import annotations

import math
import time
from typing import Final

from starlette.types import Scope

from relay.api.off_loop import OffLoop
from relay.errors import RateLimitedError
from relay.settings import Settings
from relay.store import ratelimit
from relay.store.client import Redis

# addresses remembered as blocked per process; past this the expired ones are dropped,
# then the oldest (a flood of addresses must not grow the process without bound)
MAX_BLOCKED: Final = 10_000


class AuthFailures:
    """One API process's view of which client addresses are blocked (used on its loop)."""

    def __init__(self, settings: Settings) -> None:
        self.limit = settings.auth_failure_limit
        self.window_ms = int(settings.auth_failure_window * 1000)
        self._blocked: dict[str, float] = {}  # address -> monotonic time the block ends

    def blocked(self, address: str) -> bool:
        """Whether `address` is blocked now (no I/O)."""
        return self._seconds_left(address) > 0

    def check(self, address: str) -> None:
        """429 if `address` is blocked (no I/O)."""
        left = self._seconds_left(address)
        if left > 0:
            raise _blocked_error(left)

    async def failed(self, off_loop: OffLoop, client: Redis, address: str) -> None:
        """Count a failed authentication from `address` (in Redis, off the event loop),
        blocking it once over the limit; 429 instead when it is blocked already (not
        counted again)."""
        self.check(address)
        if self.limit <= 0:
            return
        seen = await off_loop.run(
            ratelimit.count_failure, client, address=address, window_ms=self.window_ms
        )
        if seen.count >= self.limit:
            self._block(address, seen.window_left_ms / 1000)

    def _seconds_left(self, address: str) -> float:
        until = self._blocked.get(address)
        if until is None:
            return 0.0
        left = until - time.monotonic()
        if left <= 0:
            del self._blocked[address]
        return left

    def _block(self, address: str, seconds: float) -> None:
        if len(self._blocked) >= MAX_BLOCKED:
            now = time.monotonic()
            self._blocked = {a: t for a, t in self._blocked.items() if t > now}
            while len(self._blocked) >= MAX_BLOCKED:
                del self._blocked[next(iter(self._blocked))]
        self._blocked.pop(address, None)
        self._blocked[address] = time.monotonic() + seconds


def _blocked_error(seconds: float) -> RateLimitedError:
    retry_after = max(1, math.ceil(seconds))
    return RateLimitedError(
        f"too many failed authentications from this address; retry in {retry_after}s",
        retry_after=retry_after,
        headers={"Retry-After": str(retry_after)},
    )


def client_address(scope: Scope) -> str:
    """The caller's address as the server saw it (after trusted proxy headers)."""
    client = scope.get("client")
    return str(client[0]) if client else "unknown"
