"""Roles of ingest tokens seen lately, so `POST /api/events` can refuse a stranger before
reading the body without a Redis call per request.

The cache only decides whether the body is read at all: the record script still checks
every request's token in Redis (relay/store/lua/record.lua), so a token revoked a moment
ago is still refused, only after its body was read. Unknown tokens are never cached:
each costs a lookup, and failed lookups are throttled per address (auth_failures.py).
"""

from __future__ import annotations

import time
from typing import Final

from relay.store.tokens import Role

TTL_S: Final = 5.0  # how long a token's role is trusted for the body-read decision
MAX_ENTRIES: Final = 4096  # distinct tokens remembered per API process


class TokenCache:
    """Token hash key -> role, each entry for `TTL_S` seconds (one API process, one loop)."""

    def __init__(self) -> None:
        self._roles: dict[str, tuple[Role, float]] = {}

    def role(self, hash_key: str) -> Role | None:
        """The cached role of the token behind `hash_key`, if seen within the TTL."""
        entry = self._roles.get(hash_key)
        if entry is None:
            return None
        if entry[1] <= time.monotonic():
            del self._roles[hash_key]
            return None
        return entry[0]

    def remember(self, hash_key: str, role: Role) -> None:
        if len(self._roles) >= MAX_ENTRIES:
            self._roles.clear()  # tokens are few; this many means churn, start over
        self._roles[hash_key] = (role, time.monotonic() + TTL_S)
