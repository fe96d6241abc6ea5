"""Short Redis locks: SET NX PX with a random token, released or extended only by their owner."""

from __future__ import annotations

import secrets
from typing import Final

from relay.store import keys
from relay.store.client import Redis, translate_errors

# compare-and-delete / compare-and-extend: never touch a lock another owner took after ours expired
_RELEASE: Final = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
_EXTEND: Final = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""


def acquire(client: Redis, *, name: str, ttl_ms: int) -> str | None:
    """Take the lock `name` for `ttl_ms`; its owner token, or None when someone holds it."""
    token = secrets.token_hex(16)
    with translate_errors():
        taken = client.set(keys.lock(name), token, nx=True, px=ttl_ms)
    return token if taken else None


def extend(client: Redis, *, name: str, token: str, ttl_ms: int) -> bool:
    """Give a held lock `ttl_ms` more; False when it is no longer ours."""
    with translate_errors():
        return bool(client.register_script(_EXTEND)(keys=[keys.lock(name)], args=[token, ttl_ms]))


def release(client: Redis, *, name: str, token: str) -> bool:
    """Release the lock if it is still ours."""
    with translate_errors():
        return bool(client.register_script(_RELEASE)(keys=[keys.lock(name)], args=[token]))
