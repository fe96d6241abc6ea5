"""FastAPI dependencies: settings, the Redis client, and who is calling with what rights."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader

from relay.errors import ForbiddenError, RateLimitedError, UnauthorizedError
from relay.settings import Settings
from relay.store import ratelimit, tokens
from relay.store.client import Redis
from relay.store.tokens import Capability, Role, TokenInfo

# declared so /docs and /openapi.json show the scheme; we parse the header ourselves
_api_key = APIKeyHeader(name="Authorization", auto_error=False, scheme_name="ApiKey")


# dependencies that do no I/O are `async`: FastAPI runs a sync one in the threadpool,
# a hop that costs more than the dependency itself on every request
async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_redis(request: Request) -> Redis:
    client: Redis = request.app.state.redis
    return client


SettingsDep = Annotated[Settings, Depends(get_settings)]
StoreDep = Annotated[Redis, Depends(get_redis)]


def _secret_from(header: str | None) -> str:
    if not header or not header.strip():
        raise UnauthorizedError("missing Authorization header (a relay API token)")
    scheme, _, rest = header.strip().partition(" ")
    return rest.strip() if scheme.lower() == "bearer" and rest.strip() else header.strip()


# async with its Redis calls made in place: each is one short round trip (a Lua script),
# cheaper than the threadpool hop a sync dependency costs on every authenticated request
async def authenticate(
    request: Request,
    client: StoreDep,
    settings: SettingsDep,
    header: Annotated[str | None, Depends(_api_key)],
) -> TokenInfo:
    """The caller's token, or 401; applies the per-token rate limit when it is on."""
    return _authenticated(request, client, settings, header)


def _authenticated(
    request: Request, client: Redis, settings: Settings, header: str | None
) -> TokenInfo:
    secret = _secret_from(header)
    if _is_bootstrap(secret, settings):
        info = TokenInfo(id=tokens.BOOTSTRAP_ID, name="bootstrap", role=Role.ADMIN, created_at=0)
    else:
        found = tokens.find_token(client, secret=secret)
        if found is None:
            raise UnauthorizedError("invalid or revoked access token")
        info = found
    request.state.token = info
    if settings.rate_limit_per_second > 0:
        _limit(request, client, settings, info)
    return info


def _is_bootstrap(secret: str, settings: Settings) -> bool:
    return bool(settings.admin_token) and hmac.compare_digest(secret, settings.admin_token or "")


def _limit(request: Request, client: Redis, settings: Settings, info: TokenInfo) -> None:
    decision = ratelimit.take(
        client,
        token_id=info.id,
        rate=settings.rate_limit_per_second,
        burst=settings.rate_limit_burst,
    )
    headers = {
        "X-Ratelimit-Global-Remaining": str(decision.remaining),
        "X-Ratelimit-Route-Remaining": str(decision.remaining),
        "X-Ratelimit-Reset": str(decision.reset_ms),
    }
    request.state.rate_headers = headers
    if not decision.allowed:
        retry_after = max(1, -(-decision.wait_ms // 1000))
        raise RateLimitedError(
            f"rate limit of {settings.rate_limit_per_second:g}/s exceeded; retry in {retry_after}s",
            retry_after=retry_after,
            headers={**headers, "Retry-After": str(retry_after)},
        )


TokenDep = Annotated[TokenInfo, Depends(authenticate)]


def refusal(role: str | None, capability: Capability) -> UnauthorizedError | ForbiddenError:
    """The error for a token that is unknown (`role` None) or whose role lacks `capability`."""
    if role is None:
        return UnauthorizedError("invalid or revoked access token")
    return ForbiddenError(f"role {role} may not {capability.value.replace('_', ' ')}")


def require(capability: Capability) -> Callable[[TokenInfo], Awaitable[TokenInfo]]:
    """A dependency that lets through only tokens whose role has `capability`."""

    async def check(token: TokenDep) -> TokenInfo:
        if not token.can(capability):
            raise refusal(token.role.value, capability)
        return token

    return check


async def _ingest_token(
    request: Request, header: Annotated[str | None, Depends(_api_key)]
) -> TokenInfo:
    # the same checks as require(INGEST), resolved as one dependency rather than a chain
    # of four: FastAPI's dependency solving is a large share of an ingest request's CPU
    return _ingest_token_now(request, header)


def _ingest_token_now(request: Request, header: str | None) -> TokenInfo:
    state = request.app.state
    info = _authenticated(request, state.redis, state.settings, header)
    if not info.can(Capability.INGEST):
        raise refusal(info.role.value, Capability.INGEST)
    return info


@dataclass(frozen=True)
class IngestCaller:
    """Who posts events: a token checked here already, or one the record script checks.

    `POST /api/events` leaves the token check to the script that records the events
    (relay/api/ingest.py), saving a Redis round trip per request. The bootstrap admin token
    (not in Redis) and any token while the rate limit is on are checked here, as elsewhere.
    """

    secret: str
    token: TokenInfo | None  # checked here; None: the record script checks `hash_key`
    hash_key: str  # the token's hash key in Redis ('' when `token` is set)

    def check(self, client: Redis) -> None:
        """401 or 403 unless the token may ingest: for error paths, which skip the script."""
        if self.token is None:
            found = tokens.find_token(client, secret=self.secret)
            if found is None or not found.can(Capability.INGEST):
                raise refusal(found.role.value if found else None, Capability.INGEST)


def ingest_caller(request: Request, header: str | None) -> IngestCaller:
    """The caller of `POST /api/events`: 401 without a token; checked here only if it must be."""
    settings: Settings = request.app.state.settings
    secret = _secret_from(header)
    if _is_bootstrap(secret, settings) or settings.rate_limit_per_second > 0:
        return IngestCaller(secret, _ingest_token_now(request, header), "")
    return IngestCaller(secret, None, tokens.hash_key(secret))


async def _ingest_caller(
    request: Request, header: Annotated[str | None, Depends(_api_key)]
) -> IngestCaller:
    return ingest_caller(request, header)


IngestDep = Annotated[TokenInfo, Depends(_ingest_token)]
IngestCallerDep = Annotated[IngestCaller, Depends(_ingest_caller)]
ReaderDep = Annotated[TokenInfo, Depends(require(Capability.READ))]
WriterDep = Annotated[TokenInfo, Depends(require(Capability.WRITE))]
AdminDep = Annotated[TokenInfo, Depends(require(Capability.MANAGE_TOKENS))]
