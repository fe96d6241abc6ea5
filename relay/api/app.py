"""The FastAPI application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute

from relay import __version__
from relay.api.errors import register_error_handlers
from relay.api.middleware import (
    BodyLimitMiddleware,
    RateLimitHeadersMiddleware,
    TokenFirstMiddleware,
)
from relay.api.request_metrics import RequestMetricsMiddleware, all_routes
from relay.api.routes import (
    client_metrics,
    console,
    deliveries,
    delivery_queues,
    event_search,
    events,
    explain,
    flag_events,
    health,
    ingest,
    integration_manifests,
    metrics,
    status,
    subscriptions,
    tokens,
)
from relay.api.routes.ingest import IngestFastPath
from relay.api.runtime import ApiRuntime
from relay.settings import Settings, get_settings
from relay.store.client import Redis


def create_app(settings: Settings | None = None, *, redis: Redis | None = None) -> FastAPI:
    """Build the API for `settings` (from the environment when not given); its runtime is
    made when it starts, on `redis` when given (which then stays the caller's to close)."""
    settings = settings or get_settings()
    app = FastAPI(
        title="relay",
        version=__version__,
        description="Event-driven audit-log relay: Unleash events in, signed webhooks out.",
        lifespan=partial(_lifespan, settings=settings, redis=redis),
    )
    app.state.settings = settings
    register_error_handlers(app)
    routers = (
        health,
        tokens,
        events,
        event_search,
        client_metrics,
        flag_events,
        subscriptions,
        deliveries,
        integration_manifests,
        metrics,
        explain,
        status,
        delivery_queues,
        console,
    )
    for module in routers:
        app.include_router(module.router)
    _document_validation_as_400(app)
    # innermost first. Tokens are checked before bodies are read: TokenFirstMiddleware for
    # the routes, IngestFastPath itself for POST /api/events; the body limit refuses only
    # when a body is read, so a stranger gets 401 rather than 413
    app.add_middleware(TokenFirstMiddleware)
    app.add_middleware(IngestFastPath, route=_route(app, "POST", ingest.PATH))
    app.add_middleware(RateLimitHeadersMiddleware)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(RequestMetricsMiddleware)  # outermost: times every answer, 413s too
    return app


@asynccontextmanager
async def _lifespan(
    app: FastAPI, *, settings: Settings, redis: Redis | None
) -> AsyncIterator[None]:
    # made here, in the process that serves (each of uvicorn's workers has its own), and
    # closed once the server stopped taking requests
    app.state.runtime = ApiRuntime(settings, redis=redis)
    try:
        yield
    finally:
        runtime, app.state.runtime = app.state.runtime, None
        runtime.close()


def _route(app: FastAPI, method: str, path: str) -> APIRoute:
    return next(
        route
        for route in all_routes(app.router)
        if isinstance(route, APIRoute) and route.path == path and method in (route.methods or ())
    )


def _document_validation_as_400(app: FastAPI) -> None:
    """Drop FastAPI's 422 from the OpenAPI document: validation errors are answered 400."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build()
            for operations in schema.get("paths", {}).values():
                for operation in operations.values():
                    operation.get("responses", {}).pop("422", None)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
