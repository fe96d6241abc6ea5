"""The FastAPI application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
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
    deliveries,
    events,
    flag_events,
    health,
    ingest,
    metrics,
    subscriptions,
    tokens,
)
from relay.api.routes.ingest import IngestFastPath
from relay.ingest import writer
from relay.settings import Settings, get_settings
from relay.store.client import Redis, connect


def create_app(settings: Settings | None = None, *, redis: Redis | None = None) -> FastAPI:
    """Build the API for `settings` (from the environment when not given)."""
    settings = settings or get_settings()
    app = FastAPI(
        title="relay",
        version=__version__,
        description="Event-driven audit-log relay: Unleash events in, signed webhooks out.",
        lifespan=_lifespan,
    )
    app.state.settings = settings
    app.state.redis = redis if redis is not None else connect(settings.require_redis_url())
    register_error_handlers(app)
    routers = (
        health,
        tokens,
        events,
        client_metrics,
        flag_events,
        subscriptions,
        deliveries,
        metrics,
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
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    yield
    writer.close_writer(app.state)


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
