"""Per-token rate limit and failed-authentication counts, kept in Redis so every API
process shares them."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Final

from relay.store import event_scripts, keys
from relay.store.client import Redis, translate_errors

# KEYS[1] bucket; ARGV: rate per second, burst, now (ms). Returns {allowed, remaining, wait_ms}.
_BUCKET = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1]) or burst
local ts = tonumber(state[2]) or now
tokens = math.min(burst, tokens + (now - ts) * rate / 1000)
local allowed = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', now)
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
local wait = 0
if allowed == 0 then wait = math.ceil((1 - tokens) / rate * 1000) end
return {allowed, math.floor(tokens), wait}
"""


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    remaining: int
    wait_ms: int
    reset_ms: int  # when the bucket is full again, epoch ms


def take(client: Redis, *, token_id: str, rate: float, burst: int) -> RateDecision:
    """Take one request from the token's bucket."""
    now = int(time.time() * 1000)
    with translate_errors():
        allowed, remaining, wait = client.eval(
            _BUCKET, 1, keys.rate_limit(token_id), rate, burst, now
        )
    refill_ms = int((burst - int(remaining)) / rate * 1000)
    return RateDecision(bool(allowed), int(remaining), int(wait), now + refill_ms)


# KEYS[1] counter; ARGV[1] window ms. Returns {failures in the window, ms until it ends}.
_FAILURE = """
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {count, ttl}
"""
_FAILURE_SHA: Final = event_scripts.sha_of(_FAILURE)
# longer text (a forwarded address from a proxy) is cut: the key stays small
_ADDRESS_CHARS: Final = 64


@dataclass(frozen=True)
class FailureCount:
    count: int  # failed authentications from the address in the current window
    window_left_ms: int


def count_failure(client: Redis, *, address: str, window_ms: int) -> FailureCount:
    """Count one failed authentication from `address` in a fixed window shared by every
    API process."""
    with translate_errors():
        count, ttl = event_scripts.run_script(
            client,
            _FAILURE,
            _FAILURE_SHA,
            1,
            keys.auth_failures(address[:_ADDRESS_CHARS]),
            max(1, window_ms),
        )
    return FailureCount(int(count), int(ttl))
