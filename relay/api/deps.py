"""FastAPI dependencies: settings, the process's runtime and its Redis client, and who is
calling with what rights.

The token checks are async and make their Redis calls off the event loop (the runtime's
`off_loop` pool): a Redis that stalls holds the requests that need it, never the loop.

A caller shows a token in the `Authorization` header or, on `/api/...` routes other than
ingest's, the console's session cookie (relay/console/sessions.py) when it sends no
such header: the header wins. With the cookie, requests that change something (any
method but GET, HEAD and OPTIONS) must carry the session's CSRF token in `X-CSRF-Token`,
or get 403: another site can make a browser send the cookie, but cannot read the token.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader

from relay.api.auth_failures import client_address
from relay.api.runtime import ApiRuntime, runtime_of
from relay.console import sessions as console_sessions
from relay.console.sessions import Session
from relay.errors import ForbiddenError, RateLimitedError, UnauthorizedError
from relay.integrations.catalog import Catalog
from relay.settings import Settings, is_well_formed_token
from relay.store import ratelimit, tokens
from relay.store.client import Redis
from relay.store.tokens import CAPABILITIES, Capability, Role, TokenInfo

# declared so /docs and /openapi.json show the scheme; we parse the header ourselves
_api_key = APIKeyHeader(name="Authorization", auto_error=False, scheme_name="ApiKey")


# dependencies that do no I/O are `async`: FastAPI runs a sync one in the threadpool,
# a hop that costs more than the dependency itself on every request
async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_runtime(request: Request) -> ApiRuntime:
    return runtime_of(request.app)


async def get_redis(request: Request) -> Redis:
    return runtime_of(request.app).redis


async def get_catalog(request: Request) -> Catalog:
    return runtime_of(request.app).catalog


SettingsDep = Annotated[Settings, Depends(get_settings)]
CatalogDep = Annotated[Catalog, Depends(get_catalog)]
RuntimeDep = Annotated[ApiRuntime, Depends(get_runtime)]
StoreDep = Annotated[Redis, Depends(get_redis)]


_MISSING = "missing Authorization header (a relay API token)"
_MALFORMED = "malformed access token (printable ASCII without spaces, at most 1024 characters)"
_NO_SESSION = "no console session, or it has ended: sign in again"
_CSRF = "missing or wrong CSRF token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# set in the request's state by a token check made before the route (TokenFirstMiddleware)
_CHECKED = "relay_checked_token"


def _secret_from(header: str | None) -> str:
    """The token an `Authorization` header presents, bare or as `Bearer <token>`; 401 when
    there is none (which does not count as a failed authentication)."""
    text = (header or "").strip()
    scheme, _, rest = text.partition(" ")
    if scheme.lower() == "bearer":
        text = rest.strip()
    if not text:
        raise UnauthorizedError(_MISSING)
    return text


# Redis calls in the runtime's pool, not on the loop (a stall froze every request,
# tests/relay/api/test_redis_stall.py). A token lookup measured 140 us in place, 230-300 us
# through the pool one at a time, and all within noise of each other at 32 concurrent
# callers, redis.asyncio included, which would need async twins of the store's scripts:
# the pool it is. POST /api/events makes no such call per request (token_cache.py).
async def authenticate(
    request: Request,
    runtime: RuntimeDep,
    header: Annotated[str | None, Depends(_api_key)],
) -> TokenInfo:
    """The caller's token, or 401; applies the per-token rate limit when it is on."""
    checked: TokenInfo | None = request.scope.get("state", {}).get(_CHECKED)
    if checked is not None:  # checked (and counted by the rate limit) before the body was read
        return checked
    return await _authenticated(request, runtime, header)


async def check_before_body(request: Request, capability: Capability | None) -> TokenInfo:
    """The token check of a route's dependencies, made before its body is read; the
    dependencies then take this result instead of checking (and counting) again."""
    runtime = runtime_of(request.app)
    # ingest is header-only: a browser session has no reason to post events
    info = await _authenticated(
        request,
        runtime,
        request.headers.get("authorization"),
        cookie_allowed=capability is not Capability.INGEST,
    )
    if capability is not None and not info.can(capability):
        raise refusal(info.role.value, capability)
    request.scope.setdefault("state", {})[_CHECKED] = info
    return info


async def _authenticated(
    request: Request, runtime: ApiRuntime, header: str | None, *, cookie_allowed: bool = True
) -> TokenInfo:
    if cookie_allowed and _by_cookie(request, header):
        info = await _session_token(request, runtime)
    else:
        info = await token_of_secret(request, runtime, _secret_from(header))
    request.state.token = info
    await limit_rate(request, runtime, info)
    return info


async def token_of_secret(request: Request, runtime: ApiRuntime, secret: str) -> TokenInfo:
    """The token whose secret `secret` is, or 401, counted as a failed authentication of
    the caller's address (429 once that address is blocked)."""
    failures = runtime.auth_failures
    address = client_address(request.scope)
    # a blocked address gets only stored tokens, which cannot be guessed (auth_failures.py)
    bootstrap = not failures.blocked(address)
    try:
        return await _token_info(runtime, secret, bootstrap=bootstrap)
    except UnauthorizedError:
        await failures.failed(runtime.off_loop, runtime.redis, address)  # 429 when blocked
        raise


def _by_cookie(request: Request, header: str | None) -> bool:
    return (
        not (header or "").strip()
        and request.scope["path"].startswith("/api/")
        and console_sessions.COOKIE in request.cookies
    )


async def _session_token(request: Request, runtime: ApiRuntime) -> TokenInfo:
    session = await console_session(request, runtime)
    check_csrf(request, session)
    return session.token


# A cookie that names no session is not counted as a failed authentication: it cannot be
# a guess (256 random bits), it is a browser whose session ended, and a console polling
# with it would otherwise get its address, maybe a shared one, blocked.
async def console_session(request: Request, runtime: RuntimeDep) -> Session:
    """The live console session the request's cookie names, or 401."""
    session_id = request.cookies.get(console_sessions.COOKIE, "")
    if not console_sessions.is_well_formed(session_id):
        raise UnauthorizedError(_NO_SESSION)
    found = await runtime.off_loop.run(
        console_sessions.find,
        runtime.redis,
        session_id=session_id,
        admin_token=runtime.settings.admin_token,
    )
    if found is None:
        raise UnauthorizedError(_NO_SESSION)
    return found


def check_csrf(request: Request, session: Session) -> None:
    """403 unless a request that changes something repeats the session's CSRF token."""
    presented = request.headers.get(console_sessions.CSRF_HEADER)
    if request.method not in SAFE_METHODS and not console_sessions.csrf_matches(session, presented):
        raise ForbiddenError(_CSRF)


async def _token_info(runtime: ApiRuntime, secret: str, *, bootstrap: bool) -> TokenInfo:
    if not is_well_formed_token(secret):
        raise UnauthorizedError(_MALFORMED)
    if bootstrap and _is_bootstrap(secret, runtime.settings):
        return TokenInfo(id=tokens.BOOTSTRAP_ID, name="bootstrap", role=Role.ADMIN, created_at=0)
    found = await runtime.off_loop.run(tokens.find_token, runtime.redis, secret=secret)
    if found is None:
        raise UnauthorizedError("invalid or revoked access token")
    return found


def _is_bootstrap(secret: str, settings: Settings) -> bool:
    # both ASCII (checked above and by the settings' validator); bytes all the same, so
    # that nothing a header can carry makes compare_digest raise
    admin = settings.admin_token
    return bool(admin) and hmac.compare_digest(secret.encode(), (admin or "").encode())


async def limit_rate(request: Request, runtime: ApiRuntime, info: TokenInfo) -> None:
    """429 when the per-token rate limit is on and `info` used it up."""
    settings = runtime.settings
    if settings.rate_limit_per_second <= 0:
        return
    decision = await runtime.off_loop.run(
        ratelimit.take,
        runtime.redis,
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

    CAPABILITY_OF[check] = capability
    return check


async def _ingest_token(
    request: Request, header: Annotated[str | None, Depends(_api_key)]
) -> TokenInfo:
    # the same checks as require(INGEST), resolved as one dependency rather than a chain
    # of four: FastAPI's dependency solving is a large share of an ingest request's CPU
    checked: TokenInfo | None = request.scope.get("state", {}).get(_CHECKED)
    return checked if checked is not None else await _ingest_token_now(request, header)


async def _ingest_token_now(request: Request, header: str | None) -> TokenInfo:
    info = await _authenticated(request, runtime_of(request.app), header, cookie_allowed=False)
    if not info.can(Capability.INGEST):
        raise refusal(info.role.value, Capability.INGEST)
    return info


@dataclass(frozen=True)
class IngestCaller:
    """Who posts events: a token checked here already, or one the record script checks.

    `POST /api/events` leaves the authoritative token check to the script that records the
    events (relay/api/routes/ingest.py), saving a Redis round trip per request; before the body is
    read, a token is only looked up when this process has not seen it lately (token_cache.py).
    The bootstrap admin token (not in Redis) and any token while the rate limit is on are
    checked here, as elsewhere.
    """

    secret: str
    token: TokenInfo | None  # checked here; None: the record script checks `hash_key`
    hash_key: str  # the token's hash key in Redis ('' when `token` is set)

    async def check(self, runtime: ApiRuntime) -> None:
        """401 or 403 unless the token may ingest: for error paths, which skip the script."""
        if self.token is None:
            found = await runtime.off_loop.run(tokens.find_token, runtime.redis, secret=self.secret)
            if found is None or not found.can(Capability.INGEST):
                raise refusal(found.role.value if found else None, Capability.INGEST)


async def ingest_caller(request: Request, header: str | None) -> IngestCaller:
    """The caller of `POST /api/events`, before its body is read: 401/403 for a token that
    is missing, malformed, unknown or may not ingest; 429 for a throttled address."""
    runtime = runtime_of(request.app)
    settings = runtime.settings
    secret = _secret_from(header)
    failures = runtime.auth_failures
    address = client_address(request.scope)
    bootstrap = not failures.blocked(address) and _is_bootstrap(secret, settings)
    if bootstrap or settings.rate_limit_per_second > 0:
        return IngestCaller(secret, await _ingest_token_now(request, header), "")
    if not is_well_formed_token(secret):
        await failures.failed(runtime.off_loop, runtime.redis, address)
        raise UnauthorizedError(_MALFORMED)
    hash_key = tokens.hash_key(secret)
    cache = runtime.token_cache
    role = cache.role(hash_key)
    if role is None:
        found = await runtime.off_loop.run(tokens.find_token, runtime.redis, secret=secret)
        if found is None:
            await failures.failed(runtime.off_loop, runtime.redis, address)
            raise refusal(None, Capability.INGEST)
        role = found.role
        cache.remember(hash_key, role)
    if Capability.INGEST not in CAPABILITIES[role]:
        raise refusal(role.value, Capability.INGEST)
    return IngestCaller(secret, None, hash_key)


async def _ingest_caller(
    request: Request, header: Annotated[str | None, Depends(_api_key)]
) -> IngestCaller:
    return await ingest_caller(request, header)


# what a route's dependencies ask of its caller's token, for the check made before the
# body is read (TokenFirstMiddleware): a capability, or any valid token (None)
CAPABILITY_OF: dict[Callable[..., Any], Capability | None] = {
    authenticate: None,
    _ingest_token: Capability.INGEST,
}
# dependencies that check the token themselves before reading the body
SELF_CHECKED: frozenset[Callable[..., Any]] = frozenset({_ingest_caller})

IngestDep = Annotated[TokenInfo, Depends(_ingest_token)]
IngestCallerDep = Annotated[IngestCaller, Depends(_ingest_caller)]
ReaderDep = Annotated[TokenInfo, Depends(require(Capability.READ))]
WriterDep = Annotated[TokenInfo, Depends(require(Capability.WRITE))]
AdminDep = Annotated[TokenInfo, Depends(require(Capability.MANAGE_TOKENS))]
SessionDep = Annotated[Session, Depends(console_session)]
