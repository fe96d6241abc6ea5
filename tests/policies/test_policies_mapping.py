"""Mapping Unleash events to resources and action names: every type, every fixture event."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from policies import (
    RESOURCE_TYPES,
    UNLEASH_EVENT_TYPES,
    EventTarget,
    Segment,
    Tag,
    map_event,
    parse_specifier,
)

FIXTURES = Path(__file__).resolve().parents[1] / "data" / "shared" / "fixtures" / "unleash"
TYPES: list[str] = json.loads((FIXTURES / "unleash-8.2.0-event-types.json").read_text())
EVENTS: list[dict[str, Any]] = [
    json.loads(line)
    for line in (FIXTURES / "unleash-8.2.0-events-sample.jsonl").read_text().splitlines()
    if line.strip()
]
CAMEL_CASE = re.compile(r"^[a-z]+(?:[A-Z][a-z0-9]*)*$")

# A synthetic event carrying every field any template reads.
FULL_EVENT: dict[str, Any] = {
    "project": "default",
    "environment": "production",
    "featureName": "checkout",
    "createdBy": "alice@example.com",
    "tags": [{"type": "simple", "value": "team-a"}],
    "data": {
        "name": "thing",
        "id": 7,
        "value": "team-a",
        "provider": "webhook",
        "email": "bob@example.com",
        "tokenName": "ci",
        "appName": "web",
        "changeRequestId": 12,
        "signalEndpointId": 3,
        "metricName": "latency",
    },
}


def test_catalog_covers_exactly_the_unleash_types() -> None:
    """The catalog has one row for each of the 177 Unleash 8.2 event types."""
    assert len(TYPES) == 177
    assert sorted(UNLEASH_EVENT_TYPES) == sorted(TYPES)


@pytest.mark.parametrize("name", TYPES)
def test_every_type_maps(name: str) -> None:
    """Each type maps to a known resource kind, its row's actions and its raw type."""
    row = UNLEASH_EVENT_TYPES[name]
    target = map_event({**FULL_EVENT, "type": name})

    assert target.kind == row.kind
    assert row.kind in RESOURCE_TYPES
    assert {segment.type for segment in target.segments} <= RESOURCE_TYPES
    assert target.ld_actions == row.ld_actions
    assert target.actions == {*row.ld_actions, name}
    assert target.title_verb == row.title_verb
    assert target.event_type == name


@pytest.mark.parametrize("name", TYPES)
def test_every_row_is_well_formed(name: str) -> None:
    """Rows name camelCase actions and a lower-case title verb."""
    row = UNLEASH_EVENT_TYPES[name]

    assert row.ld_actions
    assert all(CAMEL_CASE.match(action) for action in row.ld_actions)
    assert row.title_verb[0].islower()


@pytest.mark.parametrize("name", TYPES)
def test_every_mapped_resource_is_matched_by_its_own_specifier(name: str) -> None:
    """A target's canonical resource, read as a specifier, matches the target."""
    target = map_event({**FULL_EVENT, "type": name, "tags": []})

    assert parse_specifier(target.resource).matches(target.segments, frozenset())


@pytest.mark.parametrize("name", TYPES)
def test_every_type_maps_a_bare_event(name: str) -> None:
    """An event with nothing but its type still maps, every unknown key global."""
    target = map_event({"type": name})

    assert target.kind == UNLEASH_EVENT_TYPES[name].kind
    assert name in target.actions


FIXTURE_EXPECTATIONS: dict[int, tuple[str, str, tuple[str, ...]]] = {
    1: ("strategy", "strategy/default", ("createStrategy",)),
    5: ("service-token", "service-token/admin", ("createAccessToken",)),
    6: ("integration", "integration/webhook", ("createIntegration",)),
    9: ("flag", "proj/default:env/*:flag/demo.flag", ("createFlag",)),
    10: ("flag", "proj/default:env/production:flag/demo.flag", ("updateRules",)),
    11: ("flag", "proj/default:env/production:flag/demo.flag", ("updateOn",)),
    16: ("context-field", "context-field/tenant", ("createContextField",)),
    21: ("flag", "proj/default:env/production:flag/demo.flag", ("updateOn",)),
    22: ("tag", "tag/team-a", ("createTag",)),
    23: ("flag", "proj/default:env/*:flag/demo.flag", ("updateTags",)),
    25: ("flag", "proj/default:env/*:flag/demo.flag", ("updateGlobalArchived",)),
}


@pytest.mark.parametrize("event", EVENTS, ids=[f"{e['id']}-{e['type']}" for e in EVENTS])
def test_every_fixture_event_maps(event: dict[str, Any]) -> None:
    """Each real Unleash event maps to a resource that names its own project/flag/env."""
    target = map_event(event)

    assert target.event_type == event["type"]
    assert event["type"] in target.actions
    assert target.project == event["project"]
    assert target.environment == event["environment"]
    if event["featureName"]:
        expected_env = event["environment"] or "*"
        flag = f"proj/{event['project']}:env/{expected_env}:flag/{event['featureName']}"
        assert target.resource == flag
    if event["id"] in FIXTURE_EXPECTATIONS:
        assert (target.kind, target.resource, target.ld_actions) == FIXTURE_EXPECTATIONS[
            event["id"]
        ]


LD_ACTIONS: list[tuple[str, tuple[str, ...]]] = [
    ("feature-created", ("createFlag",)),
    ("feature-deleted", ("deleteFlag",)),
    ("feature-environment-enabled", ("updateOn",)),
    ("feature-environment-disabled", ("updateOn",)),
    ("feature-archived", ("updateGlobalArchived",)),
    ("feature-tagged", ("updateTags",)),
    ("feature-variants-updated", ("updateFlagVariations",)),
    ("feature-dependency-added", ("updatePrerequisites",)),
    ("feature-link-updated", ("updateFlagLink",)),
    ("project-created", ("createProject",)),
    ("project-deleted", ("deleteProject",)),
    ("project-updated", ("updateProjectName",)),
    ("environment-created", ("createEnvironment",)),
    ("environment-deleted", ("deleteEnvironment",)),
    ("environment-updated", ("updateName",)),
    ("segment-created", ("createSegment",)),
    ("segment-deleted", ("deleteSegment",)),
    ("user-created", ("createMember",)),
    ("user-deleted", ("deleteMember",)),
    ("role-created", ("createRole",)),
    ("role-deleted", ("deleteRole",)),
    ("role-updated", ("updatePolicy", "updateName", "updateDescription")),
    ("addon-config-created", ("createIntegration",)),
    ("addon-config-deleted", ("deleteIntegration",)),
    ("addon-config-updated", ("updateConfiguration",)),
    ("api-token-created", ("createAccessToken",)),
    ("api-token-deleted", ("deleteAccessToken",)),
    ("pat-created", ("createAccessToken",)),
    ("group-user-added", ("updateTeamMembers",)),
    ("change-request-applied", ("applyApprovalRequest",)),
    ("strategy-created", ("createStrategy",)),
]


@pytest.mark.parametrize(("name", "actions"), LD_ACTIONS)
def test_launchdarkly_action_names(name: str, actions: tuple[str, ...]) -> None:
    """Types that LaunchDarkly has a concept for carry LaunchDarkly's action names."""
    assert UNLEASH_EVENT_TYPES[name].ld_actions == actions


KINDS: list[tuple[dict[str, Any], str]] = [
    ({"type": "feature-created", "project": "p", "featureName": "f"}, "proj/p:env/*:flag/f"),
    ({"type": "drop-features", "data": {"name": "all-features"}}, "proj/*:env/*:flag/*"),
    ({"type": "drop-strategies", "data": {"name": "all-strategies"}}, "strategy/*"),
    ({"type": "drop-environments", "data": {"name": "all-projects"}}, "proj/*:env/*"),
    ({"type": "drop-tag-types", "data": {"name": "all-tag-types"}}, "tag-type/*"),
    ({"type": "scim-users-deleted", "data": {"name": "x"}}, "member/*"),
    (
        {"type": "feature-import", "data": {"name": "f", "project": "p"}},
        "proj/p:env/*:flag/f",
    ),
    (
        {"type": "feature-tag-import", "data": {"featureName": "f", "tag": {"value": "t"}}},
        "proj/*:env/*:flag/f",
    ),
    ({"type": "feature-tagged", "featureName": "f"}, "proj/*:env/*:flag/f"),
    ({"type": "project-created", "project": "p"}, "proj/p"),
    ({"type": "project-import", "data": {"id": "p2"}}, "proj/p2"),
    ({"type": "environment-created", "data": {"name": "qa"}}, "proj/*:env/qa"),
    ({"type": "project-environment-added", "project": "p", "environment": "qa"}, "proj/p:env/qa"),
    ({"type": "segment-updated", "data": {"id": 5, "name": "beta"}}, "proj/*:env/*:segment/beta"),
    ({"type": "segment-deleted", "data": {}, "preData": {"id": 5}}, "proj/*:env/*:segment/5"),
    ({"type": "segment-created", "data": {"name": "b", "project": "p"}}, "proj/p:env/*:segment/b"),
    ({"type": "user-deleted", "preData": {"email": "a@b.c"}}, "member/a@b.c"),
    ({"type": "user-created", "data": {"id": 44}}, "member/44"),
    (
        {"type": "pat-created", "createdBy": "ann", "data": {"description": "ci"}},
        "member/ann:token/ci",
    ),
    ({"type": "group-user-added", "data": {"name": "mobile"}}, "team/mobile"),
    ({"type": "addon-config-deleted", "data": {"id": "2"}}, "integration/*"),
    ({"type": "db-pool-update"}, "acct"),
    ({"type": "remote-mcp-server-settings-updated"}, "setting/remote-mcp-server"),
    (
        {"type": "release-plan-template-created", "data": {"name": "std"}},
        "proj/*:release-pipeline/std",
    ),
    (
        {"type": "impact-metric-created", "project": "p", "data": {"metricName": "m"}},
        "proj/p:metric/m",
    ),
    (
        {
            "type": "change-added",
            "project": "p",
            "environment": "e",
            "data": {"changeRequestId": 9},
        },
        "proj/p:env/e:change-request/9",
    ),
    ({"type": "signal-endpoint-token-created", "data": {"name": "t"}}, "signal-endpoint/*:token/t"),
    ({"type": "tag-created", "data": {"type": "simple", "value": "x"}}, "tag/x"),
    ({"type": "client-register", "data": {"appName": "web"}}, "application/web"),
    ({"type": "strategy-deleted", "data": {"name": True}}, "strategy/*"),
    ({"type": "strategy-deleted", "data": "not an object"}, "strategy/*"),
    ({"type": "strategy-deleted", "data": {"name": ""}}, "strategy/*"),
    ({"type": "banner-updated", "data": {"id": 1.5}}, "banner/1.5"),
]


@pytest.mark.parametrize(("event", "resource"), KINDS)
def test_resource_keys_come_from_the_event_fields(event: dict[str, Any], resource: str) -> None:
    """Keys come from the first present field; absent or malformed ones are global (`*`)."""
    assert map_event(event).resource == resource


FALLBACKS: list[tuple[dict[str, Any], str, str, frozenset[str]]] = [
    (
        {"type": "feature-teleported", "project": "p", "environment": "e", "featureName": "f"},
        "flag",
        "proj/p:env/e:flag/f",
        frozenset({"feature-teleported"}),
    ),
    (
        {"type": "project-teleported", "project": "p"},
        "proj",
        "proj/p",
        frozenset({"project-teleported"}),
    ),
    ({"type": "brand-new"}, "unknown", "unknown/brand-new", frozenset({"brand-new"})),
    ({}, "unknown", "unknown/*", frozenset()),
    ({"type": None, "featureName": None, "project": None}, "unknown", "unknown/*", frozenset()),
    ({"type": 42, "featureName": 7}, "unknown", "unknown/*", frozenset()),
]


@pytest.mark.parametrize(("event", "kind", "resource", "actions"), FALLBACKS)
def test_unknown_types_still_map(
    event: dict[str, Any], kind: str, resource: str, actions: frozenset[str]
) -> None:
    """An unknown type gets a resource from the fields present and its raw type as action."""
    target = map_event(event)

    assert (target.kind, target.resource, target.actions, target.ld_actions) == (
        kind,
        resource,
        actions,
        (),
    )


def test_event_tags_go_on_the_subject_by_value_and_type_value() -> None:
    """The flag segment carries lower-cased tag values and `type:value` names."""
    target = map_event(
        {
            "type": "feature-stale-on",
            "project": "p",
            "featureName": "f",
            "tags": [
                {"type": "simple", "value": "Team-A"},
                {"value": "beta"},
                {"type": None, "value": "gamma"},
                {"type": "simple"},
                {"type": "simple", "value": ""},
                "loose",
                None,
            ],
        }
    )

    assert target.tags == (Tag("simple", "Team-A"), Tag("", "beta"), Tag("", "gamma"))
    assert target.segments[-1].tags == {"team-a", "simple:team-a", "beta", "gamma"}
    assert target.segments[0].tags == frozenset()


@pytest.mark.parametrize("tags", [None, "team-a", {"value": "x"}, 3])
def test_malformed_tags_field_is_ignored(tags: Any) -> None:
    """A `tags` field that is not a list means no tags."""
    assert map_event({"type": "feature-created", "tags": tags}).tags == ()


def test_target_can_be_built_from_strings() -> None:
    """`EventTarget` derives segments and shape from its resource string and tags."""
    target = EventTarget(
        kind="flag",
        resource="proj/p:env/*:flag/f",
        actions=frozenset({"updateOn"}),
        ld_actions=("updateOn",),
        title_verb="turned on the flag",
        environment=None,
        project="p",
        tags=(Tag("simple", "x"),),
    )

    assert target.segments == (
        Segment("proj", "p"),
        Segment("env", None),
        Segment("flag", "f", frozenset({"x", "simple:x"})),
    )
    assert target.shape == ("proj", "env", "flag")


def test_mapping_equals_a_target_built_from_its_strings() -> None:
    """A mapped target equals one rebuilt from its public string fields."""
    target = map_event(EVENTS[22])
    rebuilt = EventTarget(
        kind=target.kind,
        resource=target.resource,
        actions=target.actions,
        ld_actions=target.ld_actions,
        title_verb=target.title_verb,
        environment=target.environment,
        project=target.project,
        event_type=target.event_type,
        tags=target.tags,
    )

    assert rebuilt == target


def test_acct_renders_without_key() -> None:
    """The account resource has no key, as in LaunchDarkly."""
    assert str(Segment("acct", None)) == "acct"
