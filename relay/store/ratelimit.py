"""Per-token rate limit: a token bucket kept in Redis so every API process shares it."""

from __future__ import annotations

import time
from dataclasses import dataclass

from relay.store import keys
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
