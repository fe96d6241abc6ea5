"""The FastAPI application factory."""

from __future__ import annotations

from fastapi import FastAPI

from relay import __version__
from relay.api.errors import register_error_handlers
from relay.api.middleware import BodyLimitMiddleware, RateLimitHeadersMiddleware
from relay.api.request_metrics import RequestMetricsMiddleware
from relay.api.routes import (
    client_metrics,
    deliveries,
    events,
    flag_events,
    health,
    metrics,
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
    app.include_router(metrics.router)
    app.add_middleware(RateLimitHeadersMiddleware)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(RequestMetricsMiddleware)  # outermost: times every answer, 413s too
    return app
