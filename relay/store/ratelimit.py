"""Per-token rate limit and failed-authentication counts, kept in Redis so every API
process shares them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from relay.clock import now_ms
from relay.store import scripts
from relay.store.client import Redis


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    remaining: int
    wait_ms: int
    reset_ms: int  # when the bucket is full again, epoch ms


def take(client: Redis, *, token_id: str, rate: float, burst: int) -> RateDecision:
    """Take one request from the token's bucket."""
    now = now_ms()
    allowed, remaining, wait = scripts.take_from_bucket(
        client, token_id=token_id, rate=rate, burst=burst, now_ms=now
    )
    refill_ms = int((burst - remaining) / rate * 1000)
    return RateDecision(bool(allowed), remaining, wait, now + refill_ms)


# longer text (a forwarded address from a proxy) is cut: the key stays small
_ADDRESS_CHARS: Final = 64


@dataclass(frozen=True)
class FailureCount:
    count: int  # failed authentications from the address in the current window
    window_left_ms: int


def count_failure(client: Redis, *, address: str, window_ms: int) -> FailureCount:
    """Count one failed authentication from `address` in a fixed window shared by every
    API process."""
    count, ttl = scripts.count_auth_failure(
        client, address=address[:_ADDRESS_CHARS], window_ms=max(1, window_ms)
    )
    return FailureCount(count, ttl)
