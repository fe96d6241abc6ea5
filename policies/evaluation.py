"""Allow/deny evaluation of statements against one event, as DESIGN.md specifies."""

from __future__ import annotations

from collections.abc import Sequence

from policies.statements import Statement
from policies.targets import EventTarget

__all__ = ["DEFAULT_CRITICAL_ENVIRONMENTS", "matches", "statement_matches"]

DEFAULT_CRITICAL_ENVIRONMENTS = frozenset({"production"})


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


def statement_matches(
    statement: Statement, target: EventTarget, critical_environments: frozenset[str]
) -> bool:
    """Whether both the resource clause and the action clause of a statement match."""
    # Loops rather than any(): this runs for every candidate subscription of every event.
    named = False
    for glob in statement.action_globs:
        if glob.matches_any(target.actions):
            named = True
            break
    if named is (statement.actions is None):
        return False
    listed = False
    for specifier in statement.specifiers:
        if specifier.shape == target.shape and specifier.matches(
            target.segments, critical_environments
        ):
            listed = True
            break
    return listed is (statement.resources is not None)
