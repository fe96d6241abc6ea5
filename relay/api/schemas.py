"""Wire models shared by every route: the seeds' error representations."""

from __future__ import annotations

from pydantic import BaseModel


class ErrorRep(BaseModel):
    """`{code, message}`: UnauthorizedErrorRep, ForbiddenErrorRep, NotFoundErrorRep, ..."""

    code: str
    message: str


class FailureReasonRep(BaseModel):
    attribute: str
    reason: str


class ValidationFailedErrorRep(BaseModel):
    code: str
    message: str
    errors: list[FailureReasonRep]


def error_responses(*statuses: int) -> dict[int | str, dict[str, object]]:
    """OpenAPI `responses=` entries for the given error statuses, in the seeds' shapes."""
    described = {
        400: (ValidationFailedErrorRep, "Invalid request"),
        401: (ErrorRep, "Invalid access token"),
        403: (ErrorRep, "Forbidden"),
        404: (ErrorRep, "Invalid resource identifier"),
        409: (ErrorRep, "Conflict"),
        413: (ErrorRep, "Payload too large"),
        429: (ErrorRep, "Rate limited"),
        503: (ErrorRep, "Service unavailable"),
    }
    return {s: {"model": described[s][0], "description": described[s][1]} for s in statuses}


# every authenticated route can answer these (503: Redis, which auth reads, is unreachable)
AUTH_ERRORS = error_responses(400, 401, 403, 429, 503)
