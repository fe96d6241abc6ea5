"""Short Redis locks: SET NX PX with a random token, released or extended only by their owner."""

from __future__ import annotations

import secrets

from relay.store import keys, scripts
from relay.store.client import Redis, translate_errors


def acquire(client: Redis, *, name: str, ttl_ms: int) -> str | None:
    """Take the lock `name` for `ttl_ms`; its owner token, or None when someone holds it."""
    token = secrets.token_hex(16)
    with translate_errors():
        taken = client.set(keys.lock(name), token, nx=True, px=ttl_ms)
    return token if taken else None


def extend(client: Redis, *, name: str, token: str, ttl_ms: int) -> bool:
    """Give a held lock `ttl_ms` more; False when it is no longer ours."""
    # compare-and-extend: never touch a lock another owner took after ours expired
    return scripts.extend_lock(client, name=name, token=token, ttl_ms=ttl_ms)


def release(client: Redis, *, name: str, token: str) -> bool:
    """Release the lock if it is still ours."""
    return scripts.release_lock(client, name=name, token=token)
