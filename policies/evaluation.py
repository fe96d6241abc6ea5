"""Allow/deny evaluation of statements against one event, as DESIGN.md specifies.

`matches` answers yes or no, fast, for fan-out; `decide` answers the same question
clause by clause, for explaining it; `deciding_statement` names the statement that decided
without the clauses' results, for previews over many events. All three judge each clause
with the same two functions; `matches` keeps its own loop over them, as it runs for every
candidate subscription of every event (a property test holds the three to one answer).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from policies.statements import Statement
from policies.targets import EventTarget

__all__ = [
    "DEFAULT_CRITICAL_ENVIRONMENTS",
    "Decision",
    "StatementResult",
    "action_clause_matches",
    "decide",
    "deciding_statement",
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
    decided_by = _decider(statements, lambda index: results[index].matched)
    included = decided_by is not None and statements[decided_by].effect == "allow"
    return Decision(included=included, results=results, decided_by=decided_by)


def deciding_statement(
    statements: Sequence[Statement],
    target: EventTarget,
    *,
    critical_environments: frozenset[str] = DEFAULT_CRITICAL_ENVIRONMENTS,
) -> int | None:
    """`decide`'s `decided_by` alone: a statement's clauses are judged until one fails,
    and no statement after the first matching deny."""
    return _decider(
        statements,
        lambda index: statement_matches(statements[index], target, critical_environments),
    )


def _decider(statements: Sequence[Statement], matched: Callable[[int], bool]) -> int | None:
    """Deny wins: the first statement `matched` that denies, else the first that allows."""
    allowed: int | None = None
    for index, statement in enumerate(statements):
        if matched(index):
            if statement.effect == "deny":
                return index
            if allowed is None:
                allowed = index
    return allowed


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
