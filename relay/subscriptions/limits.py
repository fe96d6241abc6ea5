"""Bounds on what a writer can grow in a subscription, checked before anything costly.

Settings an operator may raise: RELAY_MAX_STATEMENTS, RELAY_MAX_POLICY_ENTRIES,
RELAY_MAX_SUBSCRIPTION_BYTES (and RELAY_MAX_SUBSCRIPTIONS, checked when storing).
Constants: a specifier or action is at most `MAX_SPECIFIER_LENGTH` characters; the name,
tags and config fields have their own bounds (`subscription_models`, `webhook_config`).
Every subscription's policy is compiled into the index each worker rebuilds when
subscriptions change (150,000 resources in one statement took 3 s), and every subscription
is listed to readers, so both count.
"""

from __future__ import annotations

from typing import Any

from relay.errors import FieldProblem
from relay.settings import Settings
from relay.subscriptions.models import StatementPost, SubscriptionPost
from relay.subscriptions.patch import document_size

MAX_SPECIFIER_LENGTH = 512
_LISTS = ("resources", "notResources", "actions", "notActions")


def policy_problems(fields: SubscriptionPost, settings: Settings) -> list[FieldProblem]:
    """Statements, entries and specifier lengths past their limits; counted before parsing."""
    statements = fields.statements or []
    if len(statements) > settings.max_statements:
        reason = f"{len(statements)} statements; at most {settings.max_statements}"
        return [FieldProblem("statements", f"{reason} (RELAY_MAX_STATEMENTS)")]
    return _entry_problems(statements, settings.max_policy_entries)


def size_problem(document: dict[str, Any], settings: Settings) -> FieldProblem | None:
    """The subscription as stored, past RELAY_MAX_SUBSCRIPTION_BYTES; None when within it.

    The message gives the limit, not the size: the stored document holds the secret, header
    and query values a writer sees masked, and its size would tell their lengths.
    """
    if document_size(document) <= settings.max_subscription_bytes:
        return None
    return FieldProblem(
        "body",
        "the subscription, with its stored secret, header and query values, is larger than "
        f"{settings.max_subscription_bytes} bytes of JSON (RELAY_MAX_SUBSCRIPTION_BYTES)",
    )


def _entry_problems(statements: list[StatementPost], max_entries: int) -> list[FieldProblem]:
    problems: list[FieldProblem] = []
    entries = 0
    for index, statement in enumerate(statements):
        for name in _LISTS:
            values: list[str] = getattr(statement, name) or []
            entries += len(values)
            if entries > max_entries:
                reason = (
                    f"the policy has more than {max_entries} entries (resources, notResources, "
                    "actions and notActions of all statements; RELAY_MAX_POLICY_ENTRIES)"
                )
                return [FieldProblem(f"statements[{index}].{name}", reason)]
            problems += [
                FieldProblem(
                    f"statements[{index}].{name}[{position}]",
                    f"{len(value)} characters; at most {MAX_SPECIFIER_LENGTH}",
                )
                for position, value in enumerate(values)
                if len(value) > MAX_SPECIFIER_LENGTH
            ]
    return problems
