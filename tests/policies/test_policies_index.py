"""The subscription index: exactly brute force, on examples and on random data."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policies import (
    UNLEASH_EVENT_TYPES,
    Statement,
    SubscriptionIndex,
    map_event,
    matches,
    parse_statements,
)

FLAG_EVENT = {
    "type": "feature-environment-enabled",
    "project": "default",
    "environment": "production",
    "featureName": "checkout",
    "tags": [{"type": "simple", "value": "team-a"}],
}


def allow(*resources: str, actions: tuple[str, ...] = ("*",)) -> list[Statement]:
    return parse_statements(
        [{"effect": "allow", "resources": list(resources), "actions": list(actions)}]
    )


def test_empty_index_matches_nothing() -> None:
    """With no subscriptions no event matches."""
    index = SubscriptionIndex()

    assert index.match(map_event(FLAG_EVENT)) == set()
    assert len(index) == 0


def test_subscription_without_statements_receives_everything() -> None:
    """A subscription with no statements matches every event."""
    index = SubscriptionIndex()
    index.add("all", [])

    assert index.match(map_event(FLAG_EVENT)) == {"all"}
    assert index.match(map_event({"type": "tag-created"})) == {"all"}


def test_add_replaces_and_remove_forgets() -> None:
    """Adding an existing id replaces its statements; removing drops it."""
    # given
    index = SubscriptionIndex()
    index.add("s", allow("proj/other:env/*:flag/*"))
    target = map_event(FLAG_EVENT)
    assert index.match(target) == set()
    # when
    index.add("s", allow("proj/default:env/*:flag/*"))
    # then
    assert index.match(target) == {"s"}
    assert len(index) == 1
    index.remove("s")
    assert index.match(target) == set()
    assert len(index) == 0


def test_subscriptions_with_equal_statements_are_each_reported() -> None:
    """Subscriptions sharing a policy all match, and removing one keeps the others."""
    # given
    index = SubscriptionIndex()
    for name in ("a", "b", "c"):
        index.add(name, allow("proj/default:env/*:flag/*"))
    target = map_event(FLAG_EVENT)
    assert index.match(target) == {"a", "b", "c"}
    # when
    index.remove("b")
    index.add("c", allow("proj/other:env/*:flag/*"))
    # then
    assert index.match(target) == {"a"}
    assert len(index) == 2


def test_remove_of_unknown_id_is_ignored() -> None:
    """Removing an id that was never added does nothing."""
    index = SubscriptionIndex()
    index.remove("nope")

    assert len(index) == 0


def test_deny_only_subscription_never_matches_but_counts() -> None:
    """A subscription of deny statements only receives nothing, yet is in the index."""
    index = SubscriptionIndex()
    index.add(
        "deny", parse_statements([{"effect": "deny", "resources": ["proj/*"], "actions": ["*"]}])
    )

    assert index.match(map_event(FLAG_EVENT)) == set()
    assert len(index) == 1


SELECTOR_CASES: list[tuple[str, list[dict[str, Any]], dict[str, Any], bool]] = [
    ("literal flag key", [{"resources": ["proj/*:env/*:flag/checkout"]}], FLAG_EVENT, True),
    ("other flag key", [{"resources": ["proj/*:env/*:flag/search"]}], FLAG_EVENT, False),
    ("literal tag", [{"resources": ["proj/*:env/*:flag/*;Team-A"]}], FLAG_EVENT, True),
    ("literal env", [{"resources": ["proj/*:env/production:flag/*"]}], FLAG_EVENT, True),
    (
        "literal env, global event",
        [{"resources": ["proj/*:env/staging:flag/*"]}],
        {**FLAG_EVENT, "environment": None},
        True,
    ),
    ("critical env", [{"resources": ["proj/*:env/*;{critical:true}:flag/*"]}], FLAG_EVENT, True),
    (
        "critical env, global event",
        [{"resources": ["proj/*:env/*;{critical:true}:flag/*"]}],
        {**FLAG_EVENT, "environment": None},
        True,
    ),
    (
        "critical env, other env",
        [{"resources": ["proj/*:env/*;{critical:true}:flag/*"]}],
        {**FLAG_EVENT, "environment": "staging"},
        False,
    ),
    ("wildcards only", [{"resources": ["proj/*:env/*:flag/*"]}], FLAG_EVENT, True),
    (
        "literal actions",
        [{"resources": ["proj/*:env/*:flag/*"], "actions": ["updateOn"]}],
        FLAG_EVENT,
        True,
    ),
    (
        "literal raw type",
        [
            {
                "resources": ["proj/*:env/production:flag/*"],
                "actions": ["feature-environment-enabled"],
            }
        ],
        FLAG_EVENT,
        True,
    ),
    (
        "other literal actions",
        [{"resources": ["proj/*:env/*:flag/*"], "actions": ["createFlag"]}],
        FLAG_EVENT,
        False,
    ),
    ("notResources", [{"notResources": ["proj/*"]}], FLAG_EVENT, True),
    (
        "notResources, literal actions",
        [{"notResources": ["proj/*"], "actions": ["updateOn"]}],
        FLAG_EVENT,
        True,
    ),
    ("notResources excluding", [{"notResources": ["proj/*:env/*:flag/*"]}], FLAG_EVENT, False),
    ("bulk event", [{"resources": ["proj/x:env/y:flag/z;t"]}], {"type": "drop-features"}, True),
    ("shape mismatch", [{"resources": ["proj/default"]}], FLAG_EVENT, False),
]


@pytest.mark.parametrize(
    ("raw", "event", "expected"),
    [case[1:] for case in SELECTOR_CASES],
    ids=[case[0] for case in SELECTOR_CASES],
)
def test_each_kind_of_bucket_finds_its_subscriptions(
    raw: list[dict[str, Any]], event: dict[str, Any], expected: bool
) -> None:
    """Every way a statement is filed is found by the events it matches."""
    statements = parse_statements([{"effect": "allow", "actions": ["*"], **item} for item in raw])
    index = SubscriptionIndex()
    index.add("s", statements)
    target = map_event(event)

    assert (index.match(target) == {"s"}) is expected
    assert matches(statements, target) is expected


def test_buckets_shared_by_several_subscriptions_survive_one_removal() -> None:
    """Removing one subscription keeps the others filed under the same buckets."""
    index = SubscriptionIndex()
    for name in ("a", "b"):
        index.add(name, allow("proj/*:env/staging:flag/*", "proj/*:env/production:flag/*"))
    index.remove("a")

    assert index.match(map_event({**FLAG_EVENT, "environment": None})) == {"b"}


def test_critical_environments_parameter_is_used() -> None:
    """The index evaluates `{critical:true}` against its configured set."""
    index = SubscriptionIndex(critical_environments=frozenset({"staging"}))
    index.add("s", allow("proj/*:env/*;{critical:true}:flag/*"))

    assert index.match(map_event({**FLAG_EVENT, "environment": "staging"})) == {"s"}
    assert index.match(map_event(FLAG_EVENT)) == set()


# --- properties on random subscriptions and events

PROJECTS = ["default", "mobile", "web"]
ENVIRONMENTS = ["production", "staging", "development"]
FLAGS = ["checkout", "search", "beta.flag"]
TAGS = [("simple", "team-a"), ("simple", "team-b"), ("release", "q3"), ("simple", "Beta")]
COMMON_TYPES = [
    "feature-created",
    "feature-environment-enabled",
    "feature-tagged",
    "strategy-created",
]
EVENT_TYPES = [*sorted(UNLEASH_EVENT_TYPES), "feature-teleported", "brand-new"]

events = st.fixed_dictionaries(
    {
        "type": st.sampled_from(COMMON_TYPES) | st.sampled_from(EVENT_TYPES),
        "project": st.sampled_from([*PROJECTS, None]),
        "environment": st.sampled_from([*ENVIRONMENTS, None]),
        "featureName": st.sampled_from([*FLAGS, None]),
        "tags": st.lists(st.sampled_from(TAGS), max_size=3).map(
            lambda tags: [{"type": kind, "value": value} for kind, value in tags]
        ),
        "data": st.fixed_dictionaries({"name": st.sampled_from(["default", "tenant", "std"])}),
    }
)

keys = st.sampled_from(
    [
        "*",
        "*",
        "default",
        "mobile",
        "mob*",
        "production",
        "staging",
        "prod*",
        "checkout",
        "check*",
        "beta.flag",
        "tenant",
        "std",
    ]
)
tag_items = st.lists(
    st.sampled_from(
        [
            "team-a",
            "TEAM-*",
            "simple:team-b",
            "q3",
            "release:*",
            "beta",
            "*",
            "{critical:true}",
            "{critical:false}",
        ]
    ),
    max_size=2,
)


@st.composite
def specifiers(draw: st.DrawFn) -> str:
    shape = draw(
        st.sampled_from(
            [("proj", "env", "flag")] * 4
            + [
                ("proj",),
                ("proj", "env"),
                ("proj", "env", "segment"),
                ("strategy",),
                ("tag",),
                ("context-field",),
                ("unknown",),
                ("proj", "release-pipeline"),
            ]
        )
    )
    parts = []
    for kind in shape:
        items = [item for item in draw(tag_items) if kind == "env" or not item.startswith("{")]
        critical = [item for item in items if item.startswith("{")][:1]
        items = [*(item for item in items if not item.startswith("{")), *critical]
        parts.append(f"{kind}/{draw(keys)}" + (";" + ",".join(items) if items else ""))
    return ":".join(parts)


actions = st.lists(
    st.sampled_from(
        [
            "*",
            "updateOn",
            "update*",
            "createFlag",
            "feature-*",
            "feature-created",
            "createStrategy",
            "deleteFlag",
            "updateTags",
            "*Flag",
        ]
    ),
    min_size=1,
    max_size=3,
)


@st.composite
def statements(draw: st.DrawFn, effect: str | None = None) -> dict[str, Any]:
    resource_key = draw(st.sampled_from(["resources"] * 4 + ["notResources"]))
    action_key = draw(st.sampled_from(["actions"] * 4 + ["notActions"]))
    return {
        "effect": effect or draw(st.sampled_from(["allow", "allow", "deny"])),
        resource_key: draw(st.lists(specifiers(), min_size=1, max_size=2)),
        action_key: draw(actions),
    }


subscriptions = st.lists(st.lists(statements(), max_size=4), min_size=1, max_size=25)
critical_sets = st.sampled_from(
    [frozenset({"production"}), frozenset(), frozenset({"staging", "production"})]
)


@settings(max_examples=300, deadline=None)
@given(subscriptions, st.lists(events, min_size=1, max_size=5), critical_sets)
def test_index_returns_exactly_what_brute_force_returns(
    raw_subscriptions: list[list[dict[str, Any]]],
    raw_events: list[dict[str, Any]],
    critical: frozenset[str],
) -> None:
    """For random subscriptions and events the index equals evaluating every one."""
    parsed = {f"s{n}": parse_statements(raw) for n, raw in enumerate(raw_subscriptions)}
    index = SubscriptionIndex(critical_environments=critical)
    for subscription_id, subscription in parsed.items():
        index.add(subscription_id, subscription)

    for event in raw_events:
        target = map_event(event)
        expected = {
            sid
            for sid, sub in parsed.items()
            if matches(sub, target, critical_environments=critical)
        }
        assert index.match(target) == expected


@settings(max_examples=100, deadline=None)
@given(subscriptions, events)
def test_index_stays_exact_after_removals_and_replacements(
    raw_subscriptions: list[list[dict[str, Any]]], event: dict[str, Any]
) -> None:
    """Removing every other subscription and re-adding the rest reversed keeps it exact."""
    parsed = {f"s{n}": parse_statements(raw) for n, raw in enumerate(raw_subscriptions)}
    index = SubscriptionIndex()
    for subscription_id, subscription in parsed.items():
        index.add(subscription_id, subscription)
    kept = dict(list(parsed.items())[::2])
    for subscription_id in parsed.keys() - kept.keys():
        index.remove(subscription_id)
    replaced = dict(zip(kept, reversed(list(kept.values())), strict=True))
    for subscription_id, subscription in replaced.items():
        index.add(subscription_id, subscription)
    target = map_event(event)

    assert index.match(target) == {sid for sid, sub in replaced.items() if matches(sub, target)}
    assert len(index) == len(replaced)


@settings(max_examples=300, deadline=None)
@given(st.lists(statements(), max_size=4), statements(effect="deny"), events)
def test_adding_a_deny_statement_never_adds_an_event(
    raw: list[dict[str, Any]], denial: dict[str, Any], event: dict[str, Any]
) -> None:
    """A subscription with one more deny statement receives a subset of the events."""
    target = map_event(event)
    before = parse_statements(raw)
    after = parse_statements([*raw, denial])
    index = SubscriptionIndex()
    index.add("before", before)
    index.add("after", after)

    if matches(after, target):
        assert matches(before, target)
    assert "after" not in index.match(target) or "before" in index.match(target)
