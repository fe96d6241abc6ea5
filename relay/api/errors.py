"""Errors to HTTP, in one place: every answer that is not a success has the seeds' shape."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, Final

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from relay.errors import (
    ApiError,
    FieldProblem,
    InvalidRequestError,
    NotReplicatedError,
    RateLimitedError,
    StoreError,
    StoreUnavailableError,
    problems_from_validation,
)
from relay.observability.metrics import UNREPLICATED_WRITES

log = logging.getLogger(__name__)

INGEST_PATH: Final = "/api/events"

_STATUS_CODES = {
    400: "invalid_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
}


def error_body(code: str, message: str, errors: list[FieldProblem] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"code": code, "message": message}
    if errors is not None:
        body["errors"] = [{"attribute": e.attribute, "reason": e.reason} for e in errors]
    return body


async def _api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    errors = exc.errors if isinstance(exc, InvalidRequestError) else None
    if isinstance(exc, InvalidRequestError) and not errors:
        errors = []
    headers = exc.headers if isinstance(exc, RateLimitedError) else None
    return JSONResponse(error_body(exc.code, exc.message, errors), exc.status_code, headers)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    raw = list(exc.errors())
    if any(e.get("type") == "json_invalid" for e in raw):
        detail = next(e for e in raw if e.get("type") == "json_invalid")
        reason = str(detail.get("ctx", {}).get("error", detail.get("msg", "invalid JSON")))
        problems = [FieldProblem("body", f"malformed JSON: {reason}")]
        return JSONResponse(error_body("invalid_request", "malformed JSON", problems), 400)
    problems = problems_from_validation(raw)
    message = "; ".join(f"{p.attribute}: {p.reason}" for p in problems[:5]) or "invalid request"
    return JSONResponse(error_body("invalid_request", message, problems), 400)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _STATUS_CODES.get(exc.status_code, "error")
    if exc.status_code == 404:
        message = f"no route for {request.method} {request.url.path}"
    elif exc.status_code == 405:
        message = f"method {request.method} not allowed on {request.url.path}"
    else:
        message = str(exc.detail)
    errors: list[FieldProblem] | None = [] if exc.status_code == 400 else None
    return JSONResponse(error_body(code, message, errors), exc.status_code, exc.headers)


_RETRY_SOON: Final = {"Retry-After": "2"}


async def _store_error(request: Request, exc: Exception) -> JSONResponse:
    log.error("store error on %s %s: %s", request.method, request.url.path, exc)
    if isinstance(exc, NotReplicatedError):
        write = "ingest" if request.url.path == INGEST_PATH else "subscription-change"
        UNREPLICATED_WRITES.labels(write).inc()
        message = (
            "the primary holds the write, but fewer replicas than required confirmed it "
            "in time, so a failover could lose it; check, then retry"
        )
        return JSONResponse(error_body("service_unavailable", message), 503, _RETRY_SOON)
    if isinstance(exc, StoreUnavailableError):
        # Redis restarting or switching primaries: a failover takes seconds
        message = "storage is unavailable; retry"
        return JSONResponse(error_body("service_unavailable", message), 503, _RETRY_SOON)
    return JSONResponse(error_body("internal_error", "storage error"), 500)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return JSONResponse(error_body("internal_error", "internal error"), 500)


Handler = Callable[[Request, Exception], Awaitable[JSONResponse]]

HANDLERS: dict[type[Exception], Handler] = {
    ApiError: _api_error,
    RequestValidationError: _validation_error,
    StarletteHTTPException: _http_error,
    StoreError: _store_error,
    Exception: _unexpected,
}


def register_error_handlers(app: FastAPI) -> None:
    """Map every error to its HTTP answer."""
    for kind, handler in HANDLERS.items():
        app.add_exception_handler(kind, handler)


async def error_response(request: Request, exc: Exception) -> JSONResponse:
    """The answer to `exc`, as the app's handlers give it (for code outside FastAPI's routing)."""
    for kind in type(exc).__mro__:
        handler = HANDLERS.get(kind)
        if handler is not None:
            return await handler(request, exc)
    return await _unexpected(request, exc)
