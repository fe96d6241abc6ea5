"""API tokens: stored hashed, looked up by hash, listed without secrets, revoked at once."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from enum import StrEnum

from relay.clock import now_ms
from relay.store import keys, scripts
from relay.store.client import Redis, translate_errors


class Role(StrEnum):
    INGEST = "ingest"
    READER = "reader"
    WRITER = "writer"
    ADMIN = "admin"


class Capability(StrEnum):
    INGEST = "ingest"  # POST events and client metrics
    READ = "read"  # every GET
    WRITE = "write"  # subscription changes, retries, replays
    MANAGE_TOKENS = "manage_tokens"


CAPABILITIES: dict[Role, frozenset[Capability]] = {
    Role.INGEST: frozenset({Capability.INGEST}),
    Role.READER: frozenset({Capability.READ}),
    Role.WRITER: frozenset({Capability.READ, Capability.WRITE, Capability.INGEST}),
    Role.ADMIN: frozenset(Capability),
}

TOKEN_PREFIX = "rly_"
BOOTSTRAP_ID = "bootstrap"


@dataclass(frozen=True)
class TokenInfo:
    """A token as listed: never its secret."""

    id: str
    name: str
    role: Role
    created_at: int

    def can(self, capability: Capability) -> bool:
        return capability in CAPABILITIES[self.role]


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def hash_key(secret: str) -> str:
    """The key that maps a secret's hash to its token's id."""
    return keys.token_hash(hash_secret(secret))


def generate_secret() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def create_token(client: Redis, *, name: str, role: Role) -> tuple[TokenInfo, str]:
    """Store a new token; returns it with its secret, which is never shown again."""
    secret = generate_secret()
    info = TokenInfo(id=uuid.uuid4().hex, name=name, role=role, created_at=now_ms())
    digest = hash_secret(secret)
    with translate_errors():
        pipe = client.pipeline(transaction=True)
        pipe.hset(
            keys.token(info.id),
            mapping={
                "name": name,
                "role": role.value,
                "hash": digest,
                "createdAt": info.created_at,
            },
        )
        pipe.set(keys.token_hash(digest), info.id)
        pipe.zadd(keys.TOKENS, {info.id: info.created_at})
        pipe.execute()
    return info, secret


def find_token(client: Redis, *, secret: str) -> TokenInfo | None:
    """The token whose secret this is, or None."""
    # hash -> id -> token in one round trip: this runs on every authenticated request
    found = scripts.find_token(client, secret_hash=hash_secret(secret))
    if not found or not found[1]:
        return None
    token_id, flat = str(found[0]), [str(item) for item in found[1]]
    return token_info(token_id, dict(zip(flat[0::2], flat[1::2], strict=True)))


def list_tokens(client: Redis) -> list[TokenInfo]:
    """Every stored token, oldest first."""
    with translate_errors():
        ids = client.zrange(keys.TOKENS, 0, -1)
        loaded = [_load(client, token_id=str(token_id)) for token_id in ids]
    return [info for info in loaded if info is not None]


def delete_token(client: Redis, *, token_id: str) -> bool:
    """Revoke a token; False if there was none."""
    with translate_errors():
        digest = client.hget(keys.token(token_id), "hash")
        if digest is None:
            return False
        pipe = client.pipeline(transaction=True)
        pipe.delete(keys.token(token_id), keys.token_hash(str(digest)), keys.rate_limit(token_id))
        pipe.zrem(keys.TOKENS, token_id)
        pipe.execute()
    return True


def _load(client: Redis, *, token_id: str) -> TokenInfo | None:
    data: dict[str, str] = client.hgetall(keys.token(token_id))  # type: ignore[assignment]
    return token_info(token_id, data) if data else None


def token_info(token_id: str, data: dict[str, str]) -> TokenInfo:
    """A token as stored (the fields of its hash), without its secret's hash."""
    return TokenInfo(
        id=token_id, name=data["name"], role=Role(data["role"]), created_at=int(data["createdAt"])
    )
