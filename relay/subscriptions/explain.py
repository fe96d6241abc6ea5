"""Why a subscription does or does not receive an event: its policy, clause by clause.

`explain` answers for one stored subscription and one recorded event, `preview` for
statements not stored yet over recorded events (the console's policy editor). Both answer
what fan-out does (workers/delivery/fanout.py): the policy's decision
(`policies.evaluation.decide`, the same clauses `matches` judges), then relay's two rules
for its own events: one about a subscription is never delivered to it, and a policy
without statements gets none of them.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from policies import (
    EventTarget,
    Statement,
    StatementValidationError,
    map_event,
    parse_statements,
    statement_to_dict,
)
from policies.catalog import RELAY_EVENT_TYPES, RELAY_SOURCE
from policies.evaluation import Decision, StatementResult, decide, deciding_statement
from relay.errors import FieldProblem
from relay.settings import Settings
from relay.store.subscriptions import SubscriptionRecord, policy_entries
from relay.subscriptions.input import invalid
from relay.subscriptions.limits import policy_problems
from relay.subscriptions.models import StatementPost, SubscriptionPost

DEFAULT_PREVIEW_EVENTS = 100
MAX_PREVIEW_EVENTS = 1000


def _absent(value: object) -> bool:
    return value is None


class EventRef(BaseModel):
    """The recorded event explained."""

    id: int
    type: str


class StatementExplanation(BaseModel):
    """One statement as written, and whether each of its clauses matched the event."""

    index: int
    effect: Literal["allow", "deny"]
    # as written: the two of the four lists the statement has
    resources: list[str] | None = Field(default=None, exclude_if=_absent)
    notResources: list[str] | None = Field(default=None, exclude_if=_absent)
    actions: list[str] | None = Field(default=None, exclude_if=_absent)
    notActions: list[str] | None = Field(default=None, exclude_if=_absent)
    resourceMatched: bool
    actionMatched: bool
    matched: bool


class Explanation(BaseModel):
    """Whether a subscription receives an event, and why."""

    included: bool = Field(description="whether fan-out delivers it to the subscription when on")
    reason: str
    subscriptionOn: bool = Field(description="an off subscription is sent nothing")
    event: EventRef
    resource: str = Field(description="the resource the event maps to; `*`: a key it lacks")
    actions: list[str] = Field(description="the action names the event maps to")
    statements: list[StatementExplanation]
    decidedBy: int | None = Field(
        description="the statement that decided: the first matching deny, else the first "
        "matching allow; null when there are no statements or none matches"
    )


class SubscriptionRef(BaseModel):
    """Which subscription an explanation is of."""

    id: str = Field(alias="_id")
    kind: str = Field(description="its integration key")
    name: str
    on: bool

    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)


class SubscriptionExplanation(BaseModel):
    subscription: SubscriptionRef
    explanation: Explanation


class EventExplanations(BaseModel):
    """Every subscription's decision on one event, a page of them in the order they were
    created; `included` counts all of them, not only the page."""

    items: list[SubscriptionExplanation]
    totalCount: int
    included: int


class PolicyPreviewPost(BaseModel):
    """Statements to try, as a subscription's are written, over the most recent events."""

    model_config = ConfigDict(extra="forbid", strict=True)

    statements: list[StatementPost]
    limit: int = Field(
        default=DEFAULT_PREVIEW_EVENTS,
        ge=1,
        le=MAX_PREVIEW_EVENTS,
        description="how many of the most recent recorded events to try",
    )


class PreviewItem(BaseModel):
    """One recorded event and whether the statements would include it."""

    eventId: int
    type: str
    createdAt: str
    included: bool
    reason: str
    decidedBy: int | None


class PolicyPreview(BaseModel):
    """The events tried, newest first; `included` of `total` would be delivered."""

    items: list[PreviewItem]
    included: int
    total: int


class ParsedPolicies:
    """Stored policies parsed once, by their JSON; the least recently used go first once
    they hold more than `max_entries` entries together.

    Parsing is most of an explanation's time: 2.3 ms for 50 statements of two specifiers
    and three actions, against 0.15 ms to evaluate them. Bounded by entries, as workers'
    indexes are (RELAY_MAX_TOTAL_POLICY_ENTRIES), since a policy's size varies 250-fold.
    """

    def __init__(self, *, max_entries: int) -> None:
        self._max_entries = max_entries
        self._entries = 0
        self._parsed: OrderedDict[str, tuple[tuple[Statement, ...], int]] = OrderedDict()
        self._lock = threading.Lock()  # routes run in a thread pool

    def get(self, statements: list[dict[str, Any]]) -> Sequence[Statement]:
        """The parsed statements; raises StatementValidationError as `parse_statements` does."""
        key = json.dumps(statements)
        with self._lock:
            found = self._parsed.get(key)
            if found is not None:
                self._parsed.move_to_end(key)
                return found[0]
        parsed = tuple(parse_statements(statements))
        self._keep(key, parsed, max(1, policy_entries(statements)))
        return parsed

    def _keep(self, key: str, parsed: tuple[Statement, ...], entries: int) -> None:
        with self._lock:
            if key in self._parsed:
                return
            self._parsed[key] = (parsed, entries)
            self._entries += entries
            while self._entries > self._max_entries and len(self._parsed) > 1:
                _, (_, dropped) = self._parsed.popitem(last=False)
                self._entries -= dropped


def explain(
    record: SubscriptionRecord,
    event: Mapping[str, Any],
    critical: frozenset[str],
    *,
    parse: Callable[[list[dict[str, Any]]], Sequence[Statement]] = parse_statements,
) -> Explanation:
    """Whether the subscription receives the recorded event, statement by statement;
    `parse` reads its stored policy (`ParsedPolicies.get` keeps them between calls)."""
    target = map_event(event)
    try:
        statements = parse(record.statements)
    except StatementValidationError as exc:
        # validated when written, so only a policy stored by an older relay; fan-out skips it
        verdict = (False, f"excluded: the stored policy does not validate ({exc})")
        return _explanation(record, event, target, None, verdict)
    decision = decide(statements, target, critical_environments=critical)
    relay_rule = _relay_rule(event, statements, sub_id=record.id)
    verdict = _verdict(statements, decision.decided_by, relay_rule)
    return _explanation(record, event, target, decision, verdict)


def explain_all(
    records: Sequence[SubscriptionRecord],
    event: Mapping[str, Any],
    critical: frozenset[str],
    *,
    parse: Callable[[list[dict[str, Any]]], Sequence[Statement]],
    offset: int,
    limit: int,
) -> EventExplanations:
    """`explain` for a page of the subscriptions, and how many of all include the event.

    The count needs only each policy's deciding statement, as preview does: explaining all
    1,000 subscriptions of the console's benchmark to count them took 65-87 ms.
    """
    target = map_event(event)
    included = 0
    for record in records:
        try:
            statements = parse(record.statements)
        except StatementValidationError:
            continue  # fan-out skips a stored policy that does not validate
        decided_by = deciding_statement(statements, target, critical_environments=critical)
        relay_rule = _relay_rule(event, statements, sub_id=record.id)
        included += _verdict(statements, decided_by, relay_rule)[0]
    page = [
        SubscriptionExplanation(
            subscription=SubscriptionRef(
                id=record.id, kind=record.integration_key, name=record.name, on=record.on
            ),
            explanation=explain(record, event, critical, parse=parse),
        )
        for record in records[offset : offset + limit]
    ]
    return EventExplanations(items=page, totalCount=len(records), included=included)


def preview(
    statements: Sequence[Statement], events: Sequence[Mapping[str, Any]], critical: frozenset[str]
) -> list[PreviewItem]:
    """Whether a subscription with `statements` would receive each of the recorded events."""
    items = []
    for event in events:
        # only the deciding statement: against 50 statements, 0.10 ms an event where
        # judging every clause (decide) took 0.15 ms
        target = map_event(event)
        decided_by = deciding_statement(statements, target, critical_environments=critical)
        relay_rule = _relay_rule(event, statements, sub_id=None)
        included, reason = _verdict(statements, decided_by, relay_rule)
        items.append(
            PreviewItem(
                eventId=event["id"],
                type=str(event.get("type", "")),
                createdAt=str(event.get("createdAt", "")),
                included=included,
                reason=reason,
                decidedBy=decided_by,
            )
        )
    return items


def preview_statements(raw: list[StatementPost], settings: Settings) -> list[Statement]:
    """Statements validated as a subscription's are, limits first; 400 naming each problem."""
    # policy_problems reads only the statements of the subscription it is given
    document = SubscriptionPost.model_construct(name="", config={}, statements=raw)
    problems = policy_problems(document, settings)
    if problems:
        raise invalid(problems)
    try:
        return parse_statements([statement.model_dump(exclude_none=True) for statement in raw])
    except StatementValidationError as exc:
        raise invalid([FieldProblem(e.attribute, e.reason) for e in exc.errors]) from exc


def _relay_rule(
    event: Mapping[str, Any], statements: Sequence[Statement], *, sub_id: str | None
) -> str | None:
    """Why fan-out keeps one of relay's own events from a policy that includes it, or None."""
    if event.get("source") != RELAY_SOURCE or event.get("type") not in RELAY_EVENT_TYPES:
        return None
    data = event.get("data")
    if sub_id is not None and isinstance(data, Mapping) and data.get("subscriptionId") == sub_id:
        return "excluded: relay's own events about a subscription are never sent to it"
    if not statements:
        return (
            "excluded: relay's own events go only to policies that ask for them; "
            "a policy without statements receives flag audit events only"
        )
    return None


def _verdict(
    statements: Sequence[Statement], decided_by: int | None, relay_rule: str | None
) -> tuple[bool, str]:
    """Whether fan-out delivers the event, given the policy's deciding statement, and why."""
    if not statements:
        verdict = (True, "included: a policy without statements receives every event")
    elif decided_by is None:
        verdict = (False, "excluded: no statement matches in both its resource and action clauses")
    elif statements[decided_by].effect == "deny":
        deny = f"excluded by statement {decided_by} (deny): both its clauses match, and deny wins"
        verdict = (False, deny)
    else:
        allow = f"included by statement {decided_by} (allow): both its clauses match, no deny does"
        verdict = (True, allow)
    if verdict[0] and relay_rule is not None:
        return False, relay_rule
    return verdict


def _explanation(
    record: SubscriptionRecord,
    event: Mapping[str, Any],
    target: EventTarget,
    decision: Decision | None,
    verdict: tuple[bool, str],
) -> Explanation:
    included, reason = verdict
    if not record.on:
        reason = f"the subscription is off, so it is sent nothing; when on, {reason}"
    results = decision.results if decision is not None else ()
    return Explanation(
        included=included,
        reason=reason,
        subscriptionOn=record.on,
        event=EventRef(id=event["id"], type=target.event_type),
        resource=target.resource,
        actions=_action_names(target),
        statements=[_statement(index, result) for index, result in enumerate(results)],
        decidedBy=decision.decided_by if decision is not None else None,
    )


def _statement(index: int, result: StatementResult) -> StatementExplanation:
    return StatementExplanation(
        index=index,
        **statement_to_dict(result.statement),
        resourceMatched=result.resource_matched,
        actionMatched=result.action_matched,
        matched=result.matched,
    )


def _action_names(target: EventTarget) -> list[str]:
    """The mapped action names in the catalog's order, then the raw type if it is another."""
    names = list(target.ld_actions)
    return names + [name for name in sorted(target.actions) if name not in names]
