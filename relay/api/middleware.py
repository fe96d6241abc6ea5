"""ASGI middleware: body size limit, the token checked before the body, rate-limit headers."""

from __future__ import annotations

import json
from collections.abc import Callable, Hashable, Iterator
from typing import Any

from fastapi.dependencies.models import Dependant
from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from relay.api.deps import CAPABILITY_OF, SELF_CHECKED, check_before_body
from relay.api.errors import error_response
from relay.api.request_metrics import all_routes
from relay.errors import ApiError, StoreError
from relay.store.tokens import Capability


class BodyTooLargeError(Exception):
    """The request body passed the limit while it was being read."""


class BodyLimitMiddleware:
    """Refuse bodies over `max_bytes` with 413 before the route reads them whole.

    Only when something reads the body: a declared length over the limit is refused at the
    first read, not on arrival, so that a token checked before the body (401) comes first.
    """

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        over = declared is not None and declared.isdigit() and int(declared) > self.max_bytes
        seen = 0
        started = False
        too_large = False

        async def counting_receive() -> Message:
            nonlocal seen, too_large
            if over:  # declared too large: not one byte is read
                too_large = True
                raise BodyTooLargeError
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    too_large = True
                    raise BodyTooLargeError
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if too_large:
                # the app caught the error (FastAPI answers 400 to any failed body read):
                # the client gets the 413 instead of whatever the app says
                if not started:
                    started = True
                    await self._refuse(send)
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLargeError:
            if not started:
                await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        body = json.dumps(
            {"code": "payload_too_large", "message": f"request body over {self.max_bytes} bytes"}
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    # the rest of the body is not read: a sender still sending holds
                    # the connection otherwise
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


class RateLimitHeadersMiddleware:
    """Copy the rate-limit headers the auth dependency left in the request state to the answer.

    Pure ASGI rather than `@app.middleware("http")`: Starlette's BaseHTTPMiddleware runs the
    app in a task group with memory streams, a cost paid on every request.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # the same dict `request.state` writes to, even if a router copies the scope
        state: dict[str, object] = scope.setdefault("state", {})

        async def send_with_headers(message: Message) -> None:
            extra = state.get("rate_headers")
            if message["type"] == "http.response.start" and isinstance(extra, dict):
                headers = MutableHeaders(scope=message)
                for name, value in extra.items():
                    headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, send_with_headers)


# a route's needs: no token checked before the body (None), any valid token (ANY_TOKEN),
# or a token with a capability
ANY_TOKEN = "any token"
Need = Capability | str | None


class TokenFirstMiddleware:
    """Check the caller's token before the route reads the request's body.

    FastAPI reads and parses a body before it solves the route's dependencies, the token
    check among them: a stranger's 5 MiB body was read and parsed before the 401. Here a
    request with a body, for a route whose dependencies check a token, has that check made
    first (401/403/429 without reading a byte of the body); the dependencies then take its
    result. Requests without a body, and `POST /api/events` (whose route checks the token
    itself before reading, relay/api/routes/ingest.py), go on untouched.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._needs: dict[int, Need] = {}  # id(route) -> what it needs (routes live as long)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _has_body(scope):
            await self.app(scope, receive, send)
            return
        need = self._need(scope)
        if need is not None:
            request = Request(scope)
            try:
                await check_before_body(request, need if isinstance(need, Capability) else None)
            except (ApiError, StoreError) as exc:
                response = await error_response(request, exc)
                response.headers["connection"] = "close"  # the body stays unread
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def _need(self, scope: Scope) -> Need:
        route = next(
            (r for r in all_routes(scope["app"].router) if r.matches(scope)[0] is Match.FULL),
            None,
        )
        if route is None:
            return None  # 404 or 405, answered without reading the body
        if id(route) not in self._needs:
            self._needs[id(route)] = _need_of(getattr(route, "dependant", None))
        return self._needs[id(route)]


def _has_body(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"transfer-encoding" or (name == b"content-length" and value.strip() != b"0"):
            return True
    return False


def _need_of(dependant: Dependant | None) -> Need:
    calls = list(_calls(dependant)) if dependant is not None else []
    if any(call in SELF_CHECKED for call in calls):
        return None
    needs = [CAPABILITY_OF[call] for call in calls if call in CAPABILITY_OF]
    if not needs:
        return None
    return next((need for need in needs if need is not None), ANY_TOKEN)


def _calls(dependant: Dependant) -> Iterator[Callable[..., Any]]:
    """Every dependency's callable, depth first (those that can be looked up)."""
    for sub in dependant.dependencies:
        if sub.call is not None and isinstance(sub.call, Hashable):
            yield sub.call
        yield from _calls(sub)
