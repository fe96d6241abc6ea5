"""Exceptions raised by the policies package.

The tree:

    PolicyError
    ├── SpecifierError              one malformed resource specifier (reason + position)
    └── StatementValidationError    one or more invalid statements (errors: list[FieldError])
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["FieldError", "PolicyError", "SpecifierError", "StatementValidationError"]


class PolicyError(Exception):
    """Root of every error the policies package raises."""


@dataclass(frozen=True)
class FieldError:
    """One problem in a request body: where it is and what is wrong with it."""

    attribute: str
    reason: str


class SpecifierError(PolicyError):
    """A resource specifier that does not parse; `position` is the offending offset."""

    def __init__(self, reason: str, position: int) -> None:
        super().__init__(f"{reason} at position {position}")
        self.reason = reason
        self.position = position


class StatementValidationError(PolicyError):
    """Statements that do not validate; `errors` lists every problem found."""

    def __init__(self, errors: list[FieldError]) -> None:
        summary = "; ".join(f"{error.attribute}: {error.reason}" for error in errors)
        super().__init__(f"invalid statements: {summary}")
        self.errors = errors
