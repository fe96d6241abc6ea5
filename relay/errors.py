"""Exceptions of the `relay` package.

RelayError
├── StoreError                 Redis failed or answered something unexpected
│   └── StoreUnavailableError  Redis cannot be reached
└── ApiError                   an answer for the client, mapped to HTTP in relay/api/errors.py
    ├── InvalidRequestError    400 invalid_request (+ errors[])
    ├── UnauthorizedError      401 unauthorized
    ├── ForbiddenError         403 forbidden
    ├── NotFoundError          404 not_found
    ├── ConflictError          409 (code given, e.g. optimistic_locking_error)
    ├── PayloadTooLargeError   413 payload_too_large
    └── RateLimitedError       429 rate_limited
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class FieldProblem:
    """One failed attribute: where (`statements[1].resources[0]`) and why."""

    attribute: str
    reason: str


# where a request's value came from, as FastAPI's validation errors start their `loc`
_REQUEST_PARTS = frozenset({"body", "query", "path", "header", "cookie"})


def attribute_of(loc: Sequence[int | str]) -> str:
    """`(3, 'createdAt')` -> `[3].createdAt`; `('tags', 0, 'value')` -> `tags[0].value`."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text or "body"


def problems_from_validation(errors: Sequence[Any]) -> list[FieldProblem]:
    """pydantic/FastAPI validation errors as `{attribute, reason}`; `('body', 0)` -> `[0]`."""
    problems = []
    for error in errors:
        loc = list(error.get("loc", ()))
        if loc and loc[0] in _REQUEST_PARTS:
            loc = loc[1:]
        problems.append(FieldProblem(attribute_of(loc), str(error.get("msg", "invalid"))))
    return problems


class RelayError(Exception):
    """Root of every error the relay raises on purpose."""


class StoreError(RelayError):
    """Redis failed or answered something unexpected."""


class StoreUnavailableError(StoreError):
    """Redis cannot be reached."""


class NotReplicatedError(StoreUnavailableError):
    """A write the primary holds that fewer replicas than required confirmed in time
    (RELAY_REDIS_MIN_REPLICAS): it may be lost in a failover, so it is not reported done."""


class ApiError(RelayError):
    """An error with a status, a code and a message for the client."""

    status_code = 500
    code = "internal_error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class InvalidRequestError(ApiError):
    status_code = 400
    code = "invalid_request"

    def __init__(self, message: str, errors: list[FieldProblem] | None = None) -> None:
        super().__init__(message)
        self.errors = errors or []


class UnauthorizedError(ApiError):
    status_code = 401
    code = "unauthorized"


class ForbiddenError(ApiError):
    status_code = 403
    code = "forbidden"


class NotFoundError(ApiError):
    status_code = 404
    code = "not_found"


class ConflictError(ApiError):
    status_code = 409
    code = "conflict"


class PayloadTooLargeError(ApiError):
    status_code = 413
    code = "payload_too_large"


class RateLimitedError(ApiError):
    status_code = 429
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: int, headers: dict[str, str]) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.headers = headers
