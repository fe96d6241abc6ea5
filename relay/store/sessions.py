"""Console sessions: a browser's sign-in, kept by the hash of its cookie, with a TTL.

A session is found by the SHA-256 of its id (the cookie's value), so Redis and its
backups hold nothing a browser could present. It names the token it was made with (its
id and the hash of its secret: a revoked token, or a changed bootstrap admin token, ends
it) and the CSRF token its unsafe requests must repeat. Each token's sessions are listed
by creation time, so that a token keeps at most a few: the oldest are dropped.
"""

from __future__ import annotations

from dataclasses import dataclass

from relay.store import keys
from relay.store.client import Redis, translate_errors
from relay.store.tokens import TokenInfo, token_info


@dataclass(frozen=True)
class StoredSession:
    """What a session keeps: never the token's secret, nor its own id."""

    token_id: str
    token_hash: str  # SHA-256 of the token's secret, as relay/store/tokens.py keeps it
    csrf_token: str
    created_at: int  # ms


def create_session(
    client: Redis, *, session_hash: str, session: StoredSession, ttl_ms: int, max_per_token: int
) -> list[str]:
    """Store a session for `ttl_ms`; the token's oldest beyond `max_per_token` are deleted
    (their hashes returned)."""
    index = keys.token_sessions(session.token_id)
    with translate_errors():
        pipe = client.pipeline(transaction=True)
        pipe.hset(
            keys.session(session_hash),
            mapping={
                "token": session.token_id,
                "tokenHash": session.token_hash,
                "csrf": session.csrf_token,
                "createdAt": session.created_at,
            },
        )
        pipe.pexpire(keys.session(session_hash), ttl_ms)
        pipe.zremrangebyscore(index, "-inf", session.created_at - ttl_ms)  # expired by now
        pipe.zadd(index, {session_hash: session.created_at})
        pipe.pexpire(index, ttl_ms)
        pipe.zrevrange(index, max_per_token, -1)
        *_, surplus = pipe.execute()
        if surplus:
            _forget(client, index, surplus)
    dropped: list[str] = surplus
    return dropped


def get_session(client: Redis, *, session_hash: str) -> StoredSession | None:
    """The session stored under this hash, or None (never made, expired or deleted)."""
    with translate_errors():
        fields: dict[str, str] = client.hgetall(keys.session(session_hash))  # type: ignore[assignment]
    if not fields.get("token") or not fields.get("csrf"):
        return None
    return StoredSession(
        token_id=fields["token"],
        token_hash=fields.get("tokenHash", ""),
        csrf_token=fields["csrf"],
        created_at=int(fields.get("createdAt", 0)),
    )


def delete_session(client: Redis, *, session_hash: str, token_id: str) -> None:
    """Forget a session (nothing happens if there is none)."""
    with translate_errors():
        _forget(client, keys.token_sessions(token_id), [session_hash])


def stored_token(client: Redis, *, session: StoredSession) -> TokenInfo | None:
    """The stored token a session was made with, or None once it is revoked."""
    with translate_errors():
        fields: dict[str, str] = client.hgetall(keys.token(session.token_id))  # type: ignore[assignment]
    # token ids are never reused; the hash check makes a session name one secret only
    if not fields or fields.get("hash") != session.token_hash:
        return None
    return token_info(session.token_id, fields)


def _forget(client: Redis, index: str, session_hashes: list[str]) -> None:
    pipe = client.pipeline(transaction=True)
    pipe.delete(*[keys.session(session_hash) for session_hash in session_hashes])
    pipe.zrem(index, *session_hashes)
    pipe.execute()
