"""Allow/deny evaluation of statements against one event, as DESIGN.md specifies.

`matches` answers yes or no, fast, for fan-out; `decide` answers the same question
clause by clause, for explaining it. Both judge each clause with the same two functions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from policies.statements import Statement
from policies.targets import EventTarget

__all__ = [
    "DEFAULT_CRITICAL_ENVIRONMENTS",
    "Decision",
    "StatementResult",
    "action_clause_matches",
    "decide",
    "matches",
    "resource_clause_matches",
    "statement_matches",
]

DEFAULT_CRITICAL_ENVIRONMENTS = frozenset({"production"})


@dataclass(frozen=True)
class StatementResult:
    """How one statement's resource clause and action clause fared against one event."""

    statement: Statement
    resource_matched: bool
    action_matched: bool

    @property
    def matched(self) -> bool:
        return self.resource_matched and self.action_matched


@dataclass(frozen=True)
class Decision:
    """Whether statements include an event, each statement's result, and which decided.

    `decided_by` is the index of the first matching `deny`, else of the first matching
    `allow`; None when there are no statements or none matched.
    """

    included: bool
    results: tuple[StatementResult, ...]
    decided_by: int | None


def matches(
    statements: Sequence[Statement],
    target: EventTarget,
    *,
    critical_environments: frozenset[str] = DEFAULT_CRITICAL_ENVIRONMENTS,
) -> bool:
    """Whether a subscription with these statements receives the event.

    No statements receive everything; a matching `deny` excludes; otherwise a
    matching `allow` includes; nothing matching excludes.
    """
    if not statements:
        return True
    allowed = False
    for statement in statements:
        if statement_matches(statement, target, critical_environments):
            if statement.effect == "deny":
                return False
            allowed = True
    return allowed


def decide(
    statements: Sequence[Statement],
    target: EventTarget,
    *,
    critical_environments: frozenset[str] = DEFAULT_CRITICAL_ENVIRONMENTS,
) -> Decision:
    """`matches`' answer with its reasons: every clause of every statement is evaluated."""
    if not statements:
        return Decision(included=True, results=(), decided_by=None)
    results = tuple(
        StatementResult(
            statement,
            resource_matched=resource_clause_matches(statement, target, critical_environments),
            action_matched=action_clause_matches(statement, target),
        )
        for statement in statements
    )
    matched = [index for index, result in enumerate(results) if result.matched]
    denied = [index for index in matched if statements[index].effect == "deny"]
    if denied:
        return Decision(included=False, results=results, decided_by=denied[0])
    if matched:
        return Decision(included=True, results=results, decided_by=matched[0])
    return Decision(included=False, results=results, decided_by=None)


def statement_matches(
    statement: Statement, target: EventTarget, critical_environments: frozenset[str]
) -> bool:
    """Whether both the resource clause and the action clause of a statement match."""
    return action_clause_matches(statement, target) and resource_clause_matches(
        statement, target, critical_environments
    )


def action_clause_matches(statement: Statement, target: EventTarget) -> bool:
    """`actions`: some pattern matches some action name; `notActions`: none matches any."""
    # Loops rather than any(): this runs for every candidate subscription of every event.
    for glob in statement.action_globs:
        if glob.matches_any(target.actions):
            return statement.actions is not None
    return statement.actions is None


def resource_clause_matches(
    statement: Statement, target: EventTarget, critical_environments: frozenset[str]
) -> bool:
    """`resources`: some specifier matches the resource; `notResources`: none does."""
    for specifier in statement.specifiers:
        if specifier.shape == target.shape and specifier.matches(
            target.segments, critical_environments
        ):
            return statement.resources is not None
    return statement.resources is None
