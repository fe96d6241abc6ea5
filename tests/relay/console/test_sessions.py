"""Console sessions in the store: kept by hash, tied to their token, bounded per token."""

from __future__ import annotations

import pytest

from relay.clock import now_ms
from relay.console import sessions
from relay.store import keys, tokens
from relay.store.client import Redis
from relay.store.tokens import Role, TokenInfo

ADMIN = "the-bootstrap-admin-token"


def started(client: Redis, role: Role = Role.READER) -> tuple[str, TokenInfo, str]:
    """A session of a new stored token: its id, the token and the token's secret."""
    info, secret = tokens.create_token(client, name="t", role=role)
    session_id, _ = sessions.start(client, token=info, secret=secret, now_ms=now_ms())
    return session_id, info, secret


def test_a_session_finds_its_token_and_csrf_token(redis_client: Redis) -> None:
    """`find` gives back the token the session was started with and its CSRF token."""
    info, secret = tokens.create_token(redis_client, name="dash", role=Role.WRITER)
    session_id, made = sessions.start(redis_client, token=info, secret=secret, now_ms=now_ms())
    found = sessions.find(redis_client, session_id=session_id, admin_token=ADMIN)
    assert found == made and found.token == info
    assert sessions.csrf_matches(found, made.csrf_token)


def test_redis_holds_no_session_id_nor_secret(redis_client: Redis) -> None:
    """Only hashes: a copy of Redis signs no one in."""
    session_id, _, secret = started(redis_client)
    dump = " ".join(redis_client.keys("*"))
    [key] = redis_client.keys(keys.session("*"))
    dump += " ".join(redis_client.hgetall(key).values())
    assert session_id not in dump and secret not in dump


def test_a_revoked_token_ends_its_session_and_the_session_is_deleted(redis_client: Redis) -> None:
    """After revocation `find` answers None and the session's key is gone."""
    session_id, info, _ = started(redis_client)
    tokens.delete_token(redis_client, token_id=info.id)
    assert sessions.find(redis_client, session_id=session_id, admin_token=ADMIN) is None
    assert redis_client.keys(keys.session("*")) == []


def test_a_bootstrap_session_lasts_while_the_admin_token_is_unchanged(redis_client: Redis) -> None:
    """The bootstrap token is a setting: a session made with it ends when it changes or is
    unset."""
    admin = TokenInfo(id=tokens.BOOTSTRAP_ID, name="bootstrap", role=Role.ADMIN, created_at=0)
    session_id, _ = sessions.start(redis_client, token=admin, secret=ADMIN, now_ms=now_ms())
    found = sessions.find(redis_client, session_id=session_id, admin_token=ADMIN)
    assert found is not None and found.token == admin
    assert sessions.find(redis_client, session_id=session_id, admin_token=None) is None
    again, _ = sessions.start(redis_client, token=admin, secret=ADMIN, now_ms=now_ms())
    assert sessions.find(redis_client, session_id=again, admin_token="changed-token") is None


@pytest.mark.parametrize("session_id", ["", "A" * 42, "A" * 44, "A" * 42 + "=", "é" * 43])
def test_only_ids_shaped_like_the_servers_are_looked_up(
    redis_client: Redis, session_id: str
) -> None:
    """What `new` ids look like: 43 URL-safe characters; anything else is no session."""
    assert not sessions.is_well_formed(session_id)
    assert sessions.find(redis_client, session_id=session_id, admin_token=ADMIN) is None


@pytest.mark.parametrize("presented", [None, "", "wrong", "ü" * 43])
def test_a_wrong_csrf_token_does_not_match(redis_client: Redis, presented: str | None) -> None:
    session_id, _, _ = started(redis_client)
    found = sessions.find(redis_client, session_id=session_id, admin_token=ADMIN)
    assert found is not None and not sessions.csrf_matches(found, presented)


def test_a_token_keeps_its_newest_sessions_only(redis_client: Redis) -> None:
    """Past MAX_PER_TOKEN, each new session ends the token's oldest."""
    info, secret = tokens.create_token(redis_client, name="t", role=Role.READER)
    made = [
        sessions.start(redis_client, token=info, secret=secret, now_ms=now_ms() + n)[0]
        for n in range(sessions.MAX_PER_TOKEN + 2)
    ]
    alive = [sessions.find(redis_client, session_id=s, admin_token=ADMIN) for s in made]
    assert [a is not None for a in alive] == [False, False] + [True] * sessions.MAX_PER_TOKEN
