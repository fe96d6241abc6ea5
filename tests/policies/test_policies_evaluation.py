"""Evaluation of whole statement lists: effects, negations, critical environments."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from policies import EventTarget, matches, parse_statements

MakeTarget = Callable[..., EventTarget]

FLAG = "proj/default:env/production:flag/checkout"
SECRET = "proj/default:env/production:flag/secret"
PROJECT = "proj/default"
SEGMENT = "proj/default:env/*:segment/beta-users"
ENABLE = ("updateOn", "feature-environment-enabled")
CREATE = ("createFlag", "feature-created")
ALL_FLAGS = "proj/*:env/*:flag/*"


def allow(resources: list[str], actions: list[str] | None = None) -> dict[str, Any]:
    return {"effect": "allow", "resources": resources, "actions": actions or ["*"]}


def deny(resources: list[str], actions: list[str] | None = None) -> dict[str, Any]:
    return {"effect": "deny", "resources": resources, "actions": actions or ["*"]}


STATEMENT_CASES: list[tuple[str, list[dict[str, Any]], str, tuple[str, ...], bool]] = [
    ("no statements receive everything", [], FLAG, ENABLE, True),
    ("no statements receive projects too", [], PROJECT, CREATE, True),
    ("a matching allow includes", [allow([ALL_FLAGS])], FLAG, ENABLE, True),
    ("nothing matching excludes", [allow(["proj/*"])], FLAG, ENABLE, False),
    ("deny alone excludes", [deny([ALL_FLAGS])], FLAG, ENABLE, False),
    ("deny alone does not include others", [deny([ALL_FLAGS])], PROJECT, CREATE, False),
    ("deny wins over allow", [allow([ALL_FLAGS]), deny([ALL_FLAGS])], FLAG, ENABLE, False),
    ("deny wins in any order", [deny([ALL_FLAGS]), allow([ALL_FLAGS])], FLAG, ENABLE, False),
    (
        "deny of one flag keeps the others",
        [allow([ALL_FLAGS]), deny(["proj/*:env/*:flag/secret"])],
        FLAG,
        ENABLE,
        True,
    ),
    (
        "deny of one flag excludes it",
        [allow([ALL_FLAGS]), deny(["proj/*:env/*:flag/secret"])],
        SECRET,
        ENABLE,
        False,
    ),
    (
        "deny of one action excludes it",
        [allow([ALL_FLAGS]), deny([ALL_FLAGS], ["updateOn"])],
        FLAG,
        ENABLE,
        False,
    ),
    (
        "deny of one action keeps the others",
        [allow([ALL_FLAGS]), deny([ALL_FLAGS], ["updateOn"])],
        FLAG,
        CREATE,
        True,
    ),
    (
        "deny by raw Unleash type",
        [allow([ALL_FLAGS]), deny([ALL_FLAGS], ["feature-environment-*"])],
        FLAG,
        ENABLE,
        False,
    ),
    ("any of several resources", [allow(["proj/*", ALL_FLAGS])], FLAG, ENABLE, True),
    (
        "any of several actions",
        [allow([ALL_FLAGS], ["createFlag", "updateOn"])],
        FLAG,
        ENABLE,
        True,
    ),
    (
        "none of several actions",
        [allow([ALL_FLAGS], ["createFlag", "deleteFlag"])],
        FLAG,
        ENABLE,
        False,
    ),
    (
        "notResources excludes what it names",
        [{"effect": "allow", "notResources": [ALL_FLAGS], "actions": ["*"]}],
        FLAG,
        ENABLE,
        False,
    ),
    (
        "notResources includes what it does not name",
        [{"effect": "allow", "notResources": [ALL_FLAGS], "actions": ["*"]}],
        PROJECT,
        CREATE,
        True,
    ),
    (
        "notResources with several specifiers needs none to match",
        [
            {
                "effect": "allow",
                "notResources": ["proj/*", "proj/*:env/*:segment/*"],
                "actions": ["*"],
            }
        ],
        SEGMENT,
        CREATE,
        False,
    ),
    (
        "notResources other shapes still included",
        [
            {
                "effect": "allow",
                "notResources": ["proj/*", "proj/*:env/*:segment/*"],
                "actions": ["*"],
            }
        ],
        FLAG,
        CREATE,
        True,
    ),
    (
        "notActions excludes a named action",
        [{"effect": "allow", "resources": [ALL_FLAGS], "notActions": ["updateOn"]}],
        FLAG,
        ENABLE,
        False,
    ),
    (
        "notActions needs no pattern to match any name",
        [
            {
                "effect": "allow",
                "resources": [ALL_FLAGS],
                "notActions": ["feature-environment-enabled"],
            }
        ],
        FLAG,
        ENABLE,
        False,
    ),
    (
        "notActions includes other actions",
        [{"effect": "allow", "resources": [ALL_FLAGS], "notActions": ["update*"]}],
        FLAG,
        CREATE,
        True,
    ),
    (
        "deny with notResources excludes everything else",
        [
            allow(["proj/*", ALL_FLAGS]),
            {"effect": "deny", "notResources": [ALL_FLAGS], "actions": ["*"]},
        ],
        PROJECT,
        CREATE,
        False,
    ),
    (
        "deny with notResources keeps what it names",
        [
            allow(["proj/*", ALL_FLAGS]),
            {"effect": "deny", "notResources": [ALL_FLAGS], "actions": ["*"]},
        ],
        FLAG,
        CREATE,
        True,
    ),
    (
        "deny with notActions excludes every other action",
        [
            allow([ALL_FLAGS]),
            {"effect": "deny", "resources": [ALL_FLAGS], "notActions": ["createFlag"]},
        ],
        FLAG,
        ENABLE,
        False,
    ),
    (
        "deny with notActions keeps the named action",
        [
            allow([ALL_FLAGS]),
            {"effect": "deny", "resources": [ALL_FLAGS], "notActions": ["createFlag"]},
        ],
        FLAG,
        CREATE,
        True,
    ),
    ("an event without names matches no actions", [allow([ALL_FLAGS])], FLAG, (), False),
    (
        "an event without names passes notActions",
        [{"effect": "allow", "resources": [ALL_FLAGS], "notActions": ["*"]}],
        FLAG,
        (),
        True,
    ),
]


@pytest.mark.parametrize(
    ("raw", "resource", "names", "expected"),
    [case[1:] for case in STATEMENT_CASES],
    ids=[case[0] for case in STATEMENT_CASES],
)
def test_statement_case(
    raw: list[dict[str, Any]],
    resource: str,
    names: tuple[str, ...],
    expected: bool,
    make_target: MakeTarget,
) -> None:
    """Deny wins, allow includes, nothing matching excludes, negations invert."""
    target = make_target(resource, names=names)

    assert matches(parse_statements(raw), target) is expected


CRITICAL_CASES: list[tuple[frozenset[str], str, str, bool]] = [
    (frozenset({"prod-eu", "prod-us"}), "prod-eu", "{critical:true}", True),
    (frozenset({"prod-eu", "prod-us"}), "production", "{critical:true}", False),
    (frozenset({"prod-eu", "prod-us"}), "production", "{critical:false}", True),
    (frozenset({"prod-eu", "prod-us"}), "prod-us", "{critical:false}", False),
    (frozenset(), "production", "{critical:true}", False),
    (frozenset(), "production", "{critical:false}", True),
    (frozenset(), "*", "{critical:true}", True),
]


@pytest.mark.parametrize(("critical", "environment", "item", "expected"), CRITICAL_CASES)
def test_critical_environments_are_a_parameter(
    critical: frozenset[str], environment: str, item: str, expected: bool, make_target: MakeTarget
) -> None:
    """`{critical:...}` follows the configured set of critical environments."""
    statements = parse_statements([allow([f"proj/*:env/*;{item}:flag/*"])])
    target = make_target(f"proj/default:env/{environment}:flag/checkout")

    assert matches(statements, target, critical_environments=critical) is expected


def test_default_critical_environment_is_production(make_target: MakeTarget) -> None:
    """Without a parameter only `production` is critical."""
    statements = parse_statements([allow(["proj/*:env/*;{critical:true}:flag/*"])])

    assert matches(statements, make_target(FLAG))
    assert not matches(statements, make_target("proj/default:env/prod:flag/checkout"))
