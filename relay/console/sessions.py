"""Console sessions: a browser signs in with an API token once, then sends a cookie.

The cookie (`COOKIE`) holds a random session id, 256 bits from `secrets`: the server
makes every id it accepts (a value it did not issue finds no session), and keeps only its
hash (relay/store/sessions.py). A session lasts `TTL_S` from sign-in, acts with its
token's role, and ends when the token is revoked (checked on every request) or when
the token signs in more than `MAX_PER_TOKEN` times (the oldest end first). Requests
that change something must repeat the session's CSRF token in `CSRF_HEADER`: another
site can make a browser send the cookie, never read the token.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from typing import Final

from relay.store import sessions, tokens
from relay.store.client import Redis
from relay.store.sessions import StoredSession
from relay.store.tokens import Role, TokenInfo

COOKIE: Final = "relay_console"
CSRF_HEADER: Final = "X-CSRF-Token"
TTL_S: Final = 12 * 3600
MAX_PER_TOKEN: Final = 20
# what `new_session_id` makes: token_urlsafe(32) is 43 characters of the URL-safe alphabet
_SESSION_ID = re.compile(r"[A-Za-z0-9_-]{43}")
_ID_BYTES: Final = 32


@dataclass(frozen=True)
class Session:
    """A signed-in browser: the token it acts for and the CSRF token it must repeat."""

    token: TokenInfo
    csrf_token: str
    session_hash: str


def is_well_formed(session_id: str) -> bool:
    """Whether `session_id` could be one this server made (checked before any lookup)."""
    return _SESSION_ID.fullmatch(session_id) is not None


def start(client: Redis, *, token: TokenInfo, secret: str, now_ms: int) -> tuple[str, Session]:
    """A new session for `token` (whose secret was just checked): its id, for the cookie."""
    session_id = secrets.token_urlsafe(_ID_BYTES)
    stored = StoredSession(
        token_id=token.id,
        token_hash=tokens.hash_secret(secret),
        csrf_token=secrets.token_urlsafe(_ID_BYTES),
        created_at=now_ms,
    )
    session_hash = _hash(session_id)
    sessions.create_session(
        client,
        session_hash=session_hash,
        session=stored,
        ttl_ms=TTL_S * 1000,
        max_per_token=MAX_PER_TOKEN,
    )
    return session_id, Session(token, stored.csrf_token, session_hash)


def find(client: Redis, *, session_id: str, admin_token: str | None) -> Session | None:
    """The live session `session_id` names, or None; a session whose token is gone (revoked,
    or the bootstrap admin token changed) is deleted."""
    if not is_well_formed(session_id):
        return None
    session_hash = _hash(session_id)
    stored = sessions.get_session(client, session_hash=session_hash)
    if stored is None:
        return None
    token = _token_of(client, stored, admin_token)
    if token is None:
        sessions.delete_session(client, session_hash=session_hash, token_id=stored.token_id)
        return None
    return Session(token, stored.csrf_token, session_hash)


def end(client: Redis, *, session: Session) -> None:
    """Sign out: the session is deleted."""
    sessions.delete_session(client, session_hash=session.session_hash, token_id=session.token.id)


def csrf_matches(session: Session, presented: str | None) -> bool:
    """Whether `presented` is the session's CSRF token (compared in constant time)."""
    if not presented or not presented.isascii():
        return False
    return hmac.compare_digest(presented.encode(), session.csrf_token.encode())


def _token_of(client: Redis, stored: StoredSession, admin_token: str | None) -> TokenInfo | None:
    if stored.token_id != tokens.BOOTSTRAP_ID:
        return sessions.stored_token(client, session=stored)
    # the bootstrap token is a setting, not a record: its session lasts while it is unchanged
    if not admin_token or not hmac.compare_digest(
        tokens.hash_secret(admin_token), stored.token_hash
    ):
        return None
    return TokenInfo(id=tokens.BOOTSTRAP_ID, name="bootstrap", role=Role.ADMIN, created_at=0)


def _hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()
