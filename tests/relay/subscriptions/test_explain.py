"""Explanations of one subscription and one event, and previews of statements over events."""

from __future__ import annotations

from typing import Any

import pytest

from policies import StatementValidationError, parse_statements
from relay.errors import InvalidRequestError
from relay.settings import Settings
from relay.store.subscriptions import SubscriptionRecord
from relay.subscriptions.explain import ParsedPolicies, explain, preview, preview_statements
from relay.subscriptions.models import StatementPost

CRITICAL = frozenset({"production"})
ALL_FLAGS = "proj/*:env/*:flag/*"


def record(statements: list[dict[str, Any]], *, on: bool = True) -> SubscriptionRecord:
    return SubscriptionRecord(
        id="sub1",
        integration_key="webhook",
        name="test",
        config={"url": "http://127.0.0.1:9/hook"},
        statements=statements,
        on=on,
        tags=[],
        created_at=0,
    )


def flag_event(**fields: Any) -> dict[str, Any]:
    """A recorded `feature-environment-enabled` of checkout in production."""
    return {
        "id": 7,
        "type": "feature-environment-enabled",
        "createdBy": "alice",
        "createdAt": "2026-01-02T03:04:05.000Z",
        "project": "default",
        "environment": "production",
        "featureName": "checkout",
        "source": "unleash",
        **fields,
    }


def relay_event(sub_id: str) -> dict[str, Any]:
    """relay's own `delivery-dead` about subscription `sub_id`."""
    return {
        "id": 8,
        "type": "delivery-dead",
        "createdBy": "relay",
        "createdAt": "2026-01-02T03:04:05.000Z",
        "source": "relay",
        "data": {"subscriptionId": sub_id, "subscription": f"webhook/{sub_id}"},
    }


def allow(resources: list[str], actions: list[str] | None = None) -> dict[str, Any]:
    return {"effect": "allow", "resources": resources, "actions": actions or ["*"]}


def deny(resources: list[str], actions: list[str] | None = None) -> dict[str, Any]:
    return {"effect": "deny", "resources": resources, "actions": actions or ["*"]}


def test_explanation_names_the_resource_actions_and_each_clause() -> None:
    """The event's resource and action names, each statement as written with its clauses."""
    statements = [allow(["proj/*"]), allow([ALL_FLAGS], ["updateOn"])]

    answer = explain(record(statements), flag_event(), CRITICAL).model_dump(mode="json")

    assert answer == {
        "included": True,
        "reason": "included by statement 1 (allow): both its clauses match, no deny does",
        "subscriptionOn": True,
        "event": {"id": 7, "type": "feature-environment-enabled"},
        "resource": "proj/default:env/production:flag/checkout",
        "actions": ["updateOn", "feature-environment-enabled"],
        "statements": [
            {
                "index": 0,
                "effect": "allow",
                "resources": ["proj/*"],
                "actions": ["*"],
                "resourceMatched": False,
                "actionMatched": True,
                "matched": False,
            },
            {
                "index": 1,
                "effect": "allow",
                "resources": [ALL_FLAGS],
                "actions": ["updateOn"],
                "resourceMatched": True,
                "actionMatched": True,
                "matched": True,
            },
        ],
        "decidedBy": 1,
    }


def test_deny_wins_and_is_named() -> None:
    """A matching deny decides, even after a matching allow."""
    statements = [allow([ALL_FLAGS]), deny(["proj/default:env/*:flag/*"], ["updateOn"])]

    answer = explain(record(statements), flag_event(), CRITICAL)

    assert not answer.included
    assert answer.decidedBy == 1
    assert answer.reason.startswith("excluded by statement 1 (deny)")


def test_not_resources_and_not_actions_are_shown_as_written() -> None:
    """Negated clauses keep their own names and are judged inverted."""
    statements = [{"effect": "allow", "notResources": ["proj/*"], "notActions": ["updateOn"]}]

    answer = explain(record(statements), flag_event(), CRITICAL)
    [shown] = answer.model_dump(mode="json")["statements"]

    assert shown["notResources"] == ["proj/*"] and shown["notActions"] == ["updateOn"]
    assert "resources" not in shown and "actions" not in shown
    assert (shown["resourceMatched"], shown["actionMatched"]) == (True, False)
    assert not answer.included
    assert answer.decidedBy is None
    assert answer.reason.startswith("excluded: no statement matches")


def test_no_statements_include_everything_and_say_so() -> None:
    """An empty policy includes the event; the reason says why; nothing decided."""
    answer = explain(record([]), flag_event(), CRITICAL)

    assert answer.included
    assert answer.statements == []
    assert answer.decidedBy is None
    assert "without statements receives every event" in answer.reason


@pytest.mark.parametrize(
    ("environment", "critical", "included"),
    [("production", CRITICAL, True), ("staging", CRITICAL, False), ("staging", {"staging"}, True)],
)
def test_critical_environments_follow_the_given_set(
    environment: str, critical: set[str], included: bool
) -> None:
    """`{critical:true}` matches the environments of the critical set passed in."""
    statements = [allow(["proj/*:env/*;{critical:true}:flag/*"])]

    answer = explain(record(statements), flag_event(environment=environment), frozenset(critical))

    assert answer.included is included
    assert answer.statements[0].resourceMatched is included


def test_tags_are_matched_on_the_flag() -> None:
    """A tag item matches the event's tags, by value or type:value."""
    statements = [allow(["proj/*:env/*:flag/*;simple:team-a"])]
    tagged = flag_event(tags=[{"type": "simple", "value": "team-a"}])

    assert explain(record(statements), tagged, CRITICAL).included
    assert not explain(record(statements), flag_event(), CRITICAL).included


def test_an_off_subscription_reports_the_policy_answer_and_that_it_is_off() -> None:
    """Off: `included` stays the policy's answer, `subscriptionOn` is false, the reason says so."""
    answer = explain(record([allow([ALL_FLAGS])], on=False), flag_event(), CRITICAL)

    assert answer.included
    assert not answer.subscriptionOn
    assert answer.reason.startswith("the subscription is off")


def test_relay_events_about_the_subscription_are_excluded() -> None:
    """A policy that asks for relay's events still never gets those about itself."""
    statements = [allow(["integration/*"], ["delivery-dead"])]

    about_itself = explain(record(statements), relay_event("sub1"), CRITICAL)
    about_another = explain(record(statements), relay_event("sub2"), CRITICAL)

    assert not about_itself.included
    assert about_itself.decidedBy == 0  # the policy includes it; fan-out's rule excludes it
    assert "never sent to it" in about_itself.reason
    assert about_another.included


def test_relay_events_skip_policies_without_statements() -> None:
    """An empty policy gets every event but relay's own."""
    answer = explain(record([]), relay_event("sub2"), CRITICAL)

    assert not answer.included
    assert "policies that ask for them" in answer.reason


def test_preview_answers_each_event_in_the_order_given() -> None:
    """One item per event, with its id, type, createdAt, answer, reason and decider."""
    statements = parse_statements([allow([ALL_FLAGS]), deny(["proj/*:env/staging:flag/*"])])
    events = [flag_event(id=3, environment="staging"), flag_event(id=2), relay_event("sub1")]

    items = [item.model_dump() for item in preview(statements, events, CRITICAL)]

    assert [(i["eventId"], i["included"], i["decidedBy"]) for i in items] == [
        (3, False, 1),
        (2, True, 0),
        (8, False, None),
    ]
    assert items[0]["type"] == "feature-environment-enabled"
    assert items[0]["createdAt"] == "2026-01-02T03:04:05.000Z"
    assert items[0]["reason"].startswith("excluded by statement 1 (deny)")


def test_preview_statements_are_validated_as_a_subscription_s(settings: Settings) -> None:
    """Limits first (RELAY_MAX_STATEMENTS), then the grammar, each problem named."""
    too_many = [StatementPost(effect="allow", resources=["proj/*"], actions=["*"])] * 51
    unknown = [StatementPost(effect="allow", resources=["flg/*"], actions=["*"])]

    with pytest.raises(InvalidRequestError) as limits:
        preview_statements(too_many, settings)
    with pytest.raises(InvalidRequestError) as grammar:
        preview_statements(unknown, settings)

    assert [p.attribute for p in limits.value.errors] == ["statements"]
    assert "RELAY_MAX_STATEMENTS" in limits.value.errors[0].reason
    assert [p.attribute for p in grammar.value.errors] == ["statements[0].resources[0]"]


def test_parsed_policies_parse_each_policy_once() -> None:
    """The same stored statements give the same parsed policy; others their own."""
    policies = ParsedPolicies(max_entries=100)
    first = [allow([ALL_FLAGS])]

    once = policies.get(first)

    assert policies.get([allow([ALL_FLAGS])]) is once
    assert list(once) == parse_statements(first)
    assert policies.get([allow(["proj/*"])]) is not once


def test_parsed_policies_forget_the_least_recent_past_their_entries() -> None:
    """Past `max_entries` entries the least recently used policy is parsed again."""
    policies = ParsedPolicies(max_entries=4)  # two policies of two entries each
    a, b, c = ([allow([f"proj/{name}"])] for name in "abc")
    kept_a = policies.get(a)
    kept_b = policies.get(b)
    policies.get(a)  # a is now the most recent

    policies.get(c)

    assert policies.get(a) is kept_a
    assert policies.get(b) is not kept_b


def test_parsed_policies_keep_nothing_of_an_invalid_policy() -> None:
    """A policy that does not parse raises each time, as parse_statements does."""
    policies = ParsedPolicies(max_entries=100)
    invalid = [{"effect": "allow", "resources": ["flg/*"], "actions": ["*"]}]

    for _ in range(2):
        with pytest.raises(StatementValidationError):
            policies.get(invalid)


def test_explain_of_a_stored_policy_that_no_longer_validates() -> None:
    """Excluded, and the reason says the stored policy does not validate."""
    invalid = [{"effect": "allow", "resources": ["flg/*"], "actions": ["*"]}]

    answer = explain(record(invalid), flag_event(), CRITICAL)

    assert not answer.included
    assert answer.statements == []
    assert "does not validate" in answer.reason
