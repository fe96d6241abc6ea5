"""The FastAPI application factory."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, Response

from relay import __version__
from relay.api.errors import register_error_handlers
from relay.api.middleware import BodyLimitMiddleware
from relay.api.routes import (
    client_metrics,
    deliveries,
    events,
    flag_events,
    health,
    subscriptions,
    tokens,
)
from relay.settings import Settings, get_settings
from relay.store.client import Redis, connect


def create_app(settings: Settings | None = None, *, redis: Redis | None = None) -> FastAPI:
    """Build the API for `settings` (from the environment when not given)."""
    settings = settings or get_settings()
    app = FastAPI(
        title="relay",
        version=__version__,
        description="Event-driven audit-log relay: Unleash events in, signed webhooks out.",
    )
    app.state.settings = settings
    app.state.redis = redis if redis is not None else connect(settings.require_redis_url())
    register_error_handlers(app)
    for module in (health, tokens, events, client_metrics, flag_events, subscriptions, deliveries):
        app.include_router(module.router)
    app.middleware("http")(_rate_limit_headers)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    return app


async def _rate_limit_headers(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    response = await call_next(request)
    for name, value in getattr(request.state, "rate_headers", {}).items():
        response.headers.setdefault(name, value)
    return response
