"""The console: its page and files (`/console`), and signing in and out (`/console/session`).

Every answer under `/console`, errors included, carries `SECURITY_HEADERS`: the page runs
only its own scripts and styles, talks only to this origin, and cannot be framed.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any, Final

from fastapi import APIRouter, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.exceptions import HTTPException

from relay.api.deps import (
    RuntimeDep,
    SessionDep,
    check_csrf,
    console_session,
    limit_rate,
    token_of_secret,
)
from relay.api.errors import error_response
from relay.api.schemas import ErrorRep, error_responses
from relay.clock import now_ms
from relay.console import assets
from relay.console import sessions as console_sessions
from relay.console.sessions import COOKIE, Session
from relay.errors import ForbiddenError, NotFoundError, PayloadTooLargeError, UnauthorizedError
from relay.store.tokens import Capability, Role

SECURITY_HEADERS: Final = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",  # frame-ancestors, for browsers that predate it
}
# a sign-in body is a token in JSON: read no more than this of a stranger's request
MAX_SESSION_BODY: Final = 4096


class _ConsoleRoute(APIRoute):
    """A route whose every answer, an error's too, carries the console's security headers."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def handle_with_headers(request: Request) -> Response:
            try:
                response = await handle(request)
            except Exception as exc:  # answered here, as the app's handlers would
                response = await error_response(request, exc)
            response.headers.update(SECURITY_HEADERS)
            return response

        return handle_with_headers


router = APIRouter(prefix="/console", tags=["console"], route_class=_ConsoleRoute)


class SessionPost(BaseModel):
    """An API token to sign in with (reader, writer or admin)."""

    model_config = ConfigDict(extra="forbid")

    # no length bound here: a token too long is a 401 like any malformed one, and the
    # whole body is bounded (MAX_SESSION_BODY)
    token: str = Field(min_length=1)


class SessionRep(BaseModel):
    """Who is signed in, and the CSRF token to send as `X-CSRF-Token` on unsafe requests."""

    name: str
    role: Role
    csrfToken: str


# the page and its files are a web page, not API: left out of /openapi.json, like /docs
@router.get("", response_class=Response, include_in_schema=False)
async def console_page(request: Request) -> Response:
    """The console: one page, its views in the URL's fragment (`#/overview`, ...)."""
    return _file(request, assets.index(), cache="no-store")


@router.get("/assets/{name}", response_class=Response, include_in_schema=False)
async def console_asset(name: str, request: Request) -> Response:
    """One of the console's files, by its name."""
    found = assets.asset(name)
    if found is None:
        raise NotFoundError("no such console file")
    return _file(request, found, cache="no-cache")


@router.post(
    "/session",
    response_model=SessionRep,
    responses=error_responses(400, 401, 403, 413, 429, 503)
    | {415: {"model": ErrorRep, "description": "Unsupported media type: not JSON"}},
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": SessionPost.model_json_schema()}},
        }
    },
)
async def sign_in(request: Request, response: Response, runtime: RuntimeDep) -> SessionRep:
    """Sign in with an API token: sets the session cookie (HttpOnly, SameSite=Strict)."""
    body = await _session_post(request)
    info = await token_of_secret(request, runtime, body.token)  # 401 counted as a failure
    await limit_rate(request, runtime, info)
    if not info.can(Capability.READ):
        raise ForbiddenError(f"role {info.role.value} may not read: it cannot use the console")
    await _end_previous(request, runtime)
    session_id, session = await runtime.off_loop.run(
        console_sessions.start, runtime.redis, token=info, secret=body.token, now_ms=now_ms()
    )
    response.set_cookie(
        COOKIE,
        session_id,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",  # the scheme a trusted proxy forwarded
    )
    return _rep(session)


@router.get("/session", response_model=SessionRep, responses=error_responses(401, 503))
async def current_session(session: SessionDep) -> SessionRep:
    """Who is signed in (401 when no one is): the page asks on load."""
    return _rep(session)


@router.delete("/session", status_code=204, responses=error_responses(401, 403, 503))
async def sign_out(request: Request, runtime: RuntimeDep, session: SessionDep) -> Response:
    """Sign out (needs `X-CSRF-Token`): the session ends and its cookie is cleared."""
    check_csrf(request, session)
    await runtime.off_loop.run(console_sessions.end, runtime.redis, session=session)
    response = Response(status_code=204)
    response.delete_cookie(
        COOKIE, path="/", httponly=True, samesite="strict", secure=request.url.scheme == "https"
    )
    return response


@router.api_route(
    "/{path:path}",
    methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
    include_in_schema=False,
)
async def no_such_console_path(path: str) -> Response:
    """Anything else under /console: 404, with the console's headers."""
    raise NotFoundError("no such console page or file")


def _file(request: Request, asset: assets.Asset, *, cache: str) -> Response:
    headers = {"Cache-Control": cache, "ETag": asset.etag}
    if request.headers.get("if-none-match") == asset.etag:
        return Response(status_code=304, headers=headers)
    return Response(asset.body, media_type=asset.media_type, headers=headers)


async def _session_post(request: Request) -> SessionPost:
    """The sign-in body: JSON (415 otherwise, so no cross-site form can send it), at most
    `MAX_SESSION_BODY` bytes (413), `{"token": ...}` (400)."""
    media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media_type != "application/json":
        raise HTTPException(415, "send the token as JSON: Content-Type: application/json")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_SESSION_BODY:
        raise PayloadTooLargeError(f"a sign-in body is at most {MAX_SESSION_BODY} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_SESSION_BODY:
            raise PayloadTooLargeError(f"a sign-in body is at most {MAX_SESSION_BODY} bytes")
    try:
        return SessionPost.model_validate_json(bytes(body))
    except ValidationError as exc:
        raise RequestValidationError(exc.errors()) from None


async def _end_previous(request: Request, runtime: RuntimeDep) -> None:
    """A browser that signs in again keeps one session: the one its cookie named ends."""
    if COOKIE not in request.cookies:
        return
    try:
        previous = await console_session(request, runtime)
    except UnauthorizedError:
        return
    await runtime.off_loop.run(console_sessions.end, runtime.redis, session=previous)


def _rep(session: Session) -> SessionRep:
    return SessionRep(
        name=session.token.name, role=session.token.role, csrfToken=session.csrf_token
    )
