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

from dataclasses import dataclass


@dataclass(frozen=True)
class FieldProblem:
    """One failed attribute: where (`statements[1].resources[0]`) and why."""

    attribute: str
    reason: str


class RelayError(Exception):
    """Root of every error the relay raises on purpose."""


class StoreError(RelayError):
    """Redis failed or answered something unexpected."""


class StoreUnavailableError(StoreError):
    """Redis cannot be reached."""


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
