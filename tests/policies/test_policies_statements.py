"""Statement validation (every error, by index and field) and the wire form."""

from __future__ import annotations

from typing import Any

import pytest

from policies import (
    FieldError,
    PolicyError,
    SpecifierError,
    StatementValidationError,
    parse_specifier,
    parse_statements,
    statement_to_dict,
)

GOOD = {"effect": "allow", "resources": ["proj/*:env/*:flag/*"], "actions": ["*"]}

INVALID: list[tuple[str, Any, list[FieldError]]] = [
    (
        "not a list",
        {"effect": "allow"},
        [FieldError("statements", "must be a list of statements")],
    ),
    ("a string", "allow", [FieldError("statements", "must be a list of statements")]),
    ("a number", 3, [FieldError("statements", "must be a list of statements")]),
    (
        "statement not an object",
        [GOOD, "allow"],
        [FieldError("statements[1]", "must be an object, got a string")],
    ),
    (
        "statement is null",
        [None],
        [FieldError("statements[0]", "must be an object, got null")],
    ),
    (
        "missing effect",
        [{"resources": ["proj/*"], "actions": ["*"]}],
        [FieldError("statements[0].effect", "must be 'allow' or 'deny', got nothing")],
    ),
    (
        "wrong effect",
        [GOOD, {**GOOD, "effect": "permit"}],
        [FieldError("statements[1].effect", "must be 'allow' or 'deny', got 'permit'")],
    ),
    (
        "effect case matters",
        [{**GOOD, "effect": "Allow"}],
        [FieldError("statements[0].effect", "must be 'allow' or 'deny', got 'Allow'")],
    ),
    (
        "unknown key",
        [{**GOOD, "conditions": {}}],
        [
            FieldError(
                "statements[0].conditions",
                "unknown field; expected one of effect, resources, notResources, actions, "
                "notActions",
            )
        ],
    ),
    (
        "snake_case key is unknown",
        [{**GOOD, "not_actions": ["x"]}],
        [
            FieldError(
                "statements[0].not_actions",
                "unknown field; expected one of effect, resources, notResources, actions, "
                "notActions",
            )
        ],
    ),
    (
        "no resources",
        [{"effect": "allow", "actions": ["*"]}],
        [FieldError("statements[0].resources", "one of resources or notResources is required")],
    ),
    (
        "both resources",
        [{**GOOD, "notResources": ["proj/*"]}],
        [
            FieldError(
                "statements[0].notResources", "cannot be given together with resources; give one"
            )
        ],
    ),
    (
        "no actions",
        [{"effect": "deny", "resources": ["proj/*"]}],
        [FieldError("statements[0].actions", "one of actions or notActions is required")],
    ),
    (
        "both actions",
        [{**GOOD, "notActions": ["x"]}],
        [FieldError("statements[0].notActions", "cannot be given together with actions; give one")],
    ),
    (
        "resources a string",
        [{**GOOD, "resources": "proj/*"}],
        [FieldError("statements[0].resources", "must be a list of strings, got a string")],
    ),
    (
        "actions an object",
        [{**GOOD, "actions": {"a": 1}}],
        [FieldError("statements[0].actions", "must be a list of strings, got an object")],
    ),
    (
        "notActions a boolean",
        [{"effect": "allow", "resources": ["proj/*"], "notActions": True}],
        [FieldError("statements[0].notActions", "must be a list of strings, got a boolean")],
    ),
    (
        "empty resources",
        [{**GOOD, "resources": []}],
        [FieldError("statements[0].resources", "must not be empty")],
    ),
    (
        "empty notActions",
        [{"effect": "allow", "resources": ["proj/*"], "notActions": []}],
        [FieldError("statements[0].notActions", "must not be empty")],
    ),
    (
        "an item not a string",
        [{**GOOD, "actions": ["updateOn", 7, 1.5]}],
        [
            FieldError("statements[0].actions[1]", "must be a string, got a number"),
            FieldError("statements[0].actions[2]", "must be a string, got a number"),
        ],
    ),
    (
        "an item a list",
        [{**GOOD, "resources": [["proj/*"]]}],
        [FieldError("statements[0].resources[0]", "must be a string, got a list")],
    ),
    (
        "an empty string item",
        [{**GOOD, "actions": [""]}],
        [FieldError("statements[0].actions[0]", "must not be empty")],
    ),
    (
        "a malformed specifier names its position",
        [GOOD, {**GOOD, "resources": ["proj/*", "proj/*:flg/x"]}],
        [FieldError("statements[1].resources[1]", "unknown resource type 'flg' at position 7")],
    ),
    (
        "a malformed notResources specifier",
        [{"effect": "deny", "notResources": ["proj/*:env/"], "actions": ["*"]}],
        [FieldError("statements[0].notResources[0]", "expected a key after 'env/' at position 11")],
    ),
    (
        "every error of every statement",
        [{"effect": "maybe", "resources": "x"}, GOOD, {"effect": "deny", "actions": []}],
        [
            FieldError("statements[0].effect", "must be 'allow' or 'deny', got 'maybe'"),
            FieldError("statements[0].resources", "must be a list of strings, got a string"),
            FieldError("statements[0].actions", "one of actions or notActions is required"),
            FieldError("statements[2].resources", "one of resources or notResources is required"),
            FieldError("statements[2].actions", "must not be empty"),
        ],
    ),
]


@pytest.mark.parametrize(
    ("raw", "errors"), [case[1:] for case in INVALID], ids=[c[0] for c in INVALID]
)
def test_invalid_statements_report_every_error(raw: Any, errors: list[FieldError]) -> None:
    """Each error names the statement index and field and says what is wrong."""
    with pytest.raises(StatementValidationError) as caught:
        parse_statements(raw)

    assert caught.value.errors == errors


def test_attribute_prefix_is_configurable() -> None:
    """The attribute names start with the caller's prefix (a JSON Patch path, say)."""
    with pytest.raises(StatementValidationError) as caught:
        parse_statements([{"effect": "no"}], attribute="body.statements")

    assert caught.value.errors[0].attribute == "body.statements[0].effect"


def test_validation_error_is_a_policy_error_with_a_summary() -> None:
    """The error is catchable as PolicyError and its message lists the problems."""
    with pytest.raises(PolicyError, match=r"statements\[0\]\.effect: must be"):
        parse_statements([{"effect": "no", "resources": ["proj/*"], "actions": ["*"]}])


def test_none_means_no_statements() -> None:
    """`None` parses to an empty list, as does an empty list."""
    assert parse_statements(None) == []
    assert parse_statements([]) == []


def test_null_fields_count_as_absent() -> None:
    """A null `notResources`/`notActions` (as generated clients send) is ignored."""
    raw = {**GOOD, "notResources": None, "notActions": None}

    assert parse_statements([raw]) == parse_statements([GOOD])


def test_tuple_of_statements_is_accepted() -> None:
    """Any sequence of mappings is accepted, not only lists."""
    assert len(parse_statements((GOOD, GOOD))) == 2


WIRE_FORMS: list[dict[str, Any]] = [
    {
        "effect": "allow",
        "resources": ["proj/*:env/*;{critical:true}:flag/*;team-a"],
        "actions": ["*"],
    },
    {"effect": "deny", "notResources": ["proj/mobile-*", "acct"], "notActions": ["update*"]},
    {"effect": "allow", "resources": ["member/*:token/*"], "notActions": ["createAccessToken"]},
    {"effect": "deny", "notResources": ["proj/*:env/*:flag/*;simple:beta"], "actions": ["a", "b"]},
]


@pytest.mark.parametrize("wire", WIRE_FORMS)
def test_statement_to_dict_returns_the_wire_form(wire: dict[str, Any]) -> None:
    """Parsing then serializing gives back the original strings and keys."""
    (statement,) = parse_statements([wire])

    assert statement_to_dict(statement) == wire


def test_statements_are_values() -> None:
    """Equal wire forms parse to equal, hashable statements."""
    first, second = parse_statements([GOOD, dict(GOOD)])

    assert first == second
    assert hash(first) == hash(second)


def test_parsed_statement_fields() -> None:
    """A statement exposes its effect, parsed specifiers and action patterns."""
    (statement,) = parse_statements([GOOD])

    assert statement.effect == "allow"
    assert statement.resources == (parse_specifier("proj/*:env/*:flag/*"),)
    assert statement.not_resources is None
    assert statement.actions == ("*",)
    assert statement.not_actions is None


def test_specifier_error_carries_reason_and_position() -> None:
    """`SpecifierError` exposes the reason and offset separately."""
    with pytest.raises(SpecifierError) as caught:
        parse_specifier("proj/*:bogus/x")

    assert (caught.value.reason, caught.value.position) == ("unknown resource type 'bogus'", 7)
    assert str(caught.value) == "unknown resource type 'bogus' at position 7"
