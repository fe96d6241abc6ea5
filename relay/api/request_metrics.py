"""ASGI middleware timing every API request, labelled by route template and status."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from relay.observability import metrics

UNMATCHED = "unmatched"


class RequestMetricsMiddleware:
    """Observe each request's duration under its route's path template, not its URL.

    The template (`/api/admin/events/{featureName}`) keeps the label set as small as the
    API; a URL would give every feature name its own time series. Pure ASGI, like the
    other middleware, to stay off Starlette's BaseHTTPMiddleware task-group cost.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # unless the app starts an answer

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            metrics.observe_request(
                scope["method"], route_template(scope), status, time.perf_counter() - started
            )


def route_template(scope: Scope) -> str:
    """The path template of the route that handled (or would handle) the request."""
    path = getattr(scope.get("route"), "path", None)
    if not isinstance(path, str):
        # answered before routing (a body over the limit), or by a router rather than a
        # route (405): find the route the request was meant for
        router = getattr(scope.get("app"), "router", None)
        route = next((r for r in all_routes(router) if r.matches(scope)[0] is not Match.NONE), None)
        path = getattr(route, "path", None)
    return path if isinstance(path, str) else UNMATCHED


def all_routes(router: Any) -> Iterator[Any]:
    """Every route of `router`, looking inside included routers (FastAPI nests them)."""
    for route in getattr(router, "routes", ()):
        nested = getattr(route, "original_router", None)
        if nested is not None:
            yield from all_routes(nested)
        else:
            yield route
