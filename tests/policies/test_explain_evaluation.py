"""`decide`: the clause-by-clause answer agrees with `matches` and names what decided."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policies import EventTarget, map_event, matches, parse_statements
from policies.evaluation import decide, deciding_statement
from tests.policies.conftest import MakeTarget
from tests.policies.test_policies_cases import CASES
from tests.policies.test_policies_evaluation import STATEMENT_CASES, allow, deny
from tests.policies.test_policies_index import critical_sets, events, statements

FLAG = "proj/default:env/production:flag/checkout"
ALL_FLAGS = "proj/*:env/*:flag/*"
ENABLE = ("updateOn", "feature-environment-enabled")


def clauses(raw: list[dict[str, Any]], target: EventTarget) -> list[tuple[bool, bool]]:
    """(resource matched, action matched) of each statement."""
    results = decide(parse_statements(raw), target).results
    return [(result.resource_matched, result.action_matched) for result in results]


@pytest.mark.parametrize(
    ("raw", "resource", "names", "expected"),
    [case[1:] for case in STATEMENT_CASES],
    ids=[case[0] for case in STATEMENT_CASES],
)
def test_decide_answers_as_matches_on_the_statement_table(
    raw: list[dict[str, Any]],
    resource: str,
    names: tuple[str, ...],
    expected: bool,
    make_target: MakeTarget,
) -> None:
    """Every row of the evaluation table gets the same answer from `decide`."""
    assert decide(parse_statements(raw), make_target(resource, names=names)).included is expected


@pytest.mark.parametrize("case", CASES)
def test_decide_answers_as_matches_on_the_specifier_table(
    case: tuple[str, str, str, str, bool], make_target: MakeTarget
) -> None:
    """Every row of the specifier table gets the same answer, and its one allow decides."""
    specifier, resource, tags, action, expected = case
    raw = [{"effect": "allow", "resources": [specifier], "actions": [action]}]

    decision = decide(parse_statements(raw), make_target(resource, tags))

    assert decision.included is expected
    assert decision.decided_by == (0 if expected else None)


@settings(max_examples=300, deadline=None)
@given(st.lists(statements(), max_size=5), events, critical_sets)
def test_decide_agrees_with_matches_on_random_policies(
    raw: list[dict[str, Any]], event: dict[str, Any], critical: frozenset[str]
) -> None:
    """On random statements and events `decide`, `deciding_statement` and `matches` agree."""
    parsed = parse_statements(raw)
    target = map_event(event)

    decision = decide(parsed, target, critical_environments=critical)

    assert decision.included is matches(parsed, target, critical_environments=critical)
    assert decision.decided_by == deciding_statement(parsed, target, critical_environments=critical)
    if decision.decided_by is not None:
        decider = decision.results[decision.decided_by]
        assert decider.matched
        assert (decider.statement.effect == "allow") is decision.included


def test_no_statements_include_everything_with_nothing_deciding(make_target: MakeTarget) -> None:
    """An empty policy includes the event; no statement decided it."""
    decision = decide([], make_target(FLAG))

    assert decision.included
    assert decision.decided_by is None
    assert decision.results == ()


def test_a_matching_allow_decides(make_target: MakeTarget) -> None:
    """The first matching allow is the one that decided."""
    raw = [allow(["proj/*"]), allow([ALL_FLAGS], ["updateOn"]), allow([ALL_FLAGS])]

    decision = decide(parse_statements(raw), make_target(FLAG))

    assert decision.included
    assert decision.decided_by == 1
    assert clauses(raw, make_target(FLAG)) == [(False, True), (True, True), (True, True)]


def test_a_deny_wins_over_an_earlier_allow(make_target: MakeTarget) -> None:
    """A matching deny decides even after a matching allow."""
    raw = [allow([ALL_FLAGS]), deny(["proj/*:env/*:flag/secret"]), deny([ALL_FLAGS], ["update*"])]

    decision = decide(parse_statements(raw), make_target(FLAG))

    assert not decision.included
    assert decision.decided_by == 2
    assert clauses(raw, make_target(FLAG)) == [(True, True), (False, True), (True, True)]


def test_nothing_matching_excludes_with_each_clause_reported(make_target: MakeTarget) -> None:
    """When no statement matches both clauses, each clause's own result is still given."""
    raw = [allow(["proj/*"]), allow([ALL_FLAGS], ["createFlag"])]

    decision = decide(parse_statements(raw), make_target(FLAG))

    assert not decision.included
    assert decision.decided_by is None
    assert clauses(raw, make_target(FLAG)) == [(False, True), (True, False)]


def test_not_resources_and_not_actions_invert_their_clause(make_target: MakeTarget) -> None:
    """A notResources clause matches what it does not name; notActions likewise."""
    raw = [
        {"effect": "allow", "notResources": ["proj/*"], "notActions": ["createFlag"]},
        {"effect": "allow", "notResources": [ALL_FLAGS], "notActions": ["updateOn"]},
    ]

    assert clauses(raw, make_target(FLAG, names=ENABLE)) == [(True, True), (False, False)]
    assert decide(parse_statements(raw), make_target(FLAG, names=ENABLE)).decided_by == 0


@pytest.mark.parametrize(
    ("environment", "critical", "matched"),
    [
        ("production", frozenset({"production"}), True),
        ("staging", frozenset({"production"}), False),
        ("staging", frozenset({"staging"}), True),
    ],
)
def test_critical_environments_are_judged_in_the_resource_clause(
    environment: str, critical: frozenset[str], matched: bool, make_target: MakeTarget
) -> None:
    """`{critical:true}` follows the critical set given, in the resource clause only."""
    raw = [allow(["proj/*:env/*;{critical:true}:flag/*"])]
    target = make_target(f"proj/default:env/{environment}:flag/checkout")

    decision = decide(parse_statements(raw), target, critical_environments=critical)

    assert decision.results[0].resource_matched is matched
    assert decision.results[0].action_matched
    assert decision.included is matched


def test_tags_are_judged_in_the_resource_clause(make_target: MakeTarget) -> None:
    """A tag item matches a tagged flag and not an untagged one."""
    raw = [allow(["proj/*:env/*:flag/*;simple:team-a"])]

    tagged = decide(parse_statements(raw), make_target(FLAG, "simple:team-a"))
    untagged = decide(parse_statements(raw), make_target(FLAG))

    assert tagged.included and tagged.results[0].resource_matched
    assert not untagged.included and not untagged.results[0].resource_matched
