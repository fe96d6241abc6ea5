"""The policy case table: (specifier, resource, tags, action, expected), one allow statement each.

Resources are written canonically: `*` as a key means the event does not know it
(global). Tags are `type:value`, comma-separated. Every event here carries the action
names `updateOn` and `feature-environment-enabled`.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from policies import RESOURCE_TYPES, EventTarget, matches, parse_statements

MakeTarget = Callable[..., EventTarget]

FLAG = "proj/default:env/production:flag/checkout"
STAGING_FLAG = "proj/default:env/staging:flag/checkout"
GLOBAL_FLAG = "proj/default:env/*:flag/checkout"
SEGMENT = "proj/default:env/*:segment/beta-users"

CASES: list[tuple[str, str, str, str, bool]] = [
    # --- key globs, case-sensitive keys
    ("proj/*:env/*:flag/*", FLAG, "", "*", True),
    ("proj/default:env/production:flag/checkout", FLAG, "", "*", True),
    ("proj/Default:env/production:flag/checkout", FLAG, "", "*", False),
    ("proj/default:env/Production:flag/checkout", FLAG, "", "*", False),
    ("proj/default:env/production:flag/Checkout", FLAG, "", "*", False),
    ("proj/*:env/*:flag/check*", FLAG, "", "*", True),
    ("proj/*:env/*:flag/*out", FLAG, "", "*", True),
    ("proj/*:env/*:flag/c*k*t", FLAG, "", "*", True),
    ("proj/*:env/*:flag/checkout*", FLAG, "", "*", True),
    ("proj/*:env/*:flag/*checkout*", FLAG, "", "*", True),
    ("proj/*:env/*:flag/**", FLAG, "", "*", True),
    ("proj/*:env/*:flag/check", FLAG, "", "*", False),
    ("proj/*:env/*:flag/heckout", FLAG, "", "*", False),
    ("proj/*:env/*:flag/checkout-*", FLAG, "", "*", False),
    (
        "proj/*:env/*:flag/checkout.v2",
        "proj/default:env/production:flag/checkout.v2",
        "",
        "*",
        True,
    ),
    (
        "proj/*:env/*:flag/checkout.v2",
        "proj/default:env/production:flag/checkoutXv2",
        "",
        "*",
        False,
    ),
    ("proj/*:env/*:flag/a?c", "proj/default:env/production:flag/abc", "", "*", False),
    ("proj/*:env/*:flag/a?c", "proj/default:env/production:flag/a?c", "", "*", True),
    ("proj/*:env/*:flag/a[b]", "proj/default:env/production:flag/a[b]", "", "*", True),
    ("proj/*:env/*:flag/a[b]", "proj/default:env/production:flag/ab", "", "*", False),
    ("proj/*:env/*:flag/v+", "proj/default:env/production:flag/vv", "", "*", False),
    ("proj/*:env/*:flag/café", "proj/default:env/production:flag/café", "", "*", True),
    ("proj/mobile-*:env/*:flag/*", "proj/mobile-ios:env/production:flag/x", "", "*", True),
    ("proj/mobile-*:env/*:flag/*", "proj/web:env/production:flag/x", "", "*", False),
    ("proj/*:env/prod*:flag/*", FLAG, "", "*", True),
    ("proj/*:env/prod*:flag/*", STAGING_FLAG, "", "*", False),
    ("proj/*:env/staging:flag/*", STAGING_FLAG, "", "*", True),
    # --- shapes must match
    ("proj/*", "proj/default", "", "*", True),
    ("proj/default", "proj/default", "", "*", True),
    ("proj/other", "proj/default", "", "*", False),
    ("proj/*", FLAG, "", "*", False),
    ("proj/*:env/*", FLAG, "", "*", False),
    ("proj/*:env/*", "proj/default:env/production", "", "*", True),
    ("proj/*:env/*:flag/*", "proj/default:env/production", "", "*", False),
    ("proj/*:env/*:flag/*", "proj/default", "", "*", False),
    ("proj/*:env/*:segment/*", FLAG, "", "*", False),
    ("proj/*:env/*:flag/*", SEGMENT, "", "*", False),
    ("flag/*", FLAG, "", "*", False),
    ("env/*:flag/*", FLAG, "", "*", False),
    ("proj/*:flag/*", FLAG, "", "*", False),
    ("proj/*:env/*:flag/*:flag/*", FLAG, "", "*", False),
    # --- environment-less (global) events match every env specifier
    ("proj/*:env/production:flag/*", GLOBAL_FLAG, "", "*", True),
    ("proj/*:env/staging:flag/*", GLOBAL_FLAG, "", "*", True),
    ("proj/*:env/prod*:flag/*", GLOBAL_FLAG, "", "*", True),
    ("proj/*:env/*;{critical:true}:flag/*", GLOBAL_FLAG, "", "*", True),
    ("proj/*:env/*;{critical:false}:flag/*", GLOBAL_FLAG, "", "*", True),
    ("proj/*:env/*;team-a:flag/*", GLOBAL_FLAG, "", "*", True),
    ("proj/*:env/production:flag/other", GLOBAL_FLAG, "", "*", False),
    ("proj/other:env/*:flag/*", GLOBAL_FLAG, "", "*", False),
    ("proj/*:env/production", "proj/*:env/*", "", "*", True),
    # --- bulk events (drop-*) are global in every segment
    ("proj/default:env/production:flag/checkout", "proj/*:env/*:flag/*", "", "*", True),
    ("proj/*;team-a:env/*:flag/*;team-b", "proj/*:env/*:flag/*", "", "*", True),
    ("strategy/default", "strategy/*", "", "*", True),
    ("member/alice@example.com", "member/*", "", "*", True),
    ("proj/*", "proj/*", "", "*", True),
    ("proj/*:env/*", "proj/*", "", "*", False),
    # --- critical environments (default: production)
    ("proj/*:env/*;{critical:true}:flag/*", FLAG, "", "*", True),
    ("proj/*:env/*;{critical:true}:flag/*", STAGING_FLAG, "", "*", False),
    ("proj/*:env/*;{critical:false}:flag/*", STAGING_FLAG, "", "*", True),
    ("proj/*:env/*;{critical:false}:flag/*", FLAG, "", "*", False),
    ("proj/*:env/prod*;{critical:true}:flag/*", FLAG, "", "*", True),
    ("proj/*:env/stag*;{critical:true}:flag/*", STAGING_FLAG, "", "*", False),
    ("proj/*:env/production;{critical:false}:flag/*", FLAG, "", "*", False),
    ("proj/*:env/*;{critical:true}", "proj/default:env/production", "", "*", True),
    ("proj/*:env/*;{critical:true}", "proj/default:env/development", "", "*", False),
    ("proj/*:env/*;{critical:true}:segment/*", SEGMENT, "", "*", True),
    # --- tags: AND, case-insensitive, by value or type:value
    ("proj/*:env/*:flag/*;team-a", FLAG, "simple:team-a", "*", True),
    ("proj/*:env/*:flag/*;Team-A", FLAG, "simple:team-a", "*", True),
    ("proj/*:env/*:flag/*;team-a", FLAG, "simple:TEAM-A", "*", True),
    ("proj/*:env/*:flag/*;simple:team-a", FLAG, "simple:team-a", "*", True),
    ("proj/*:env/*:flag/*;SIMPLE:Team-A", FLAG, "simple:team-a", "*", True),
    ("proj/*:env/*:flag/*;other:team-a", FLAG, "simple:team-a", "*", False),
    ("proj/*:env/*:flag/*;simple:*", FLAG, "simple:team-a", "*", True),
    ("proj/*:env/*:flag/*;*:team-a", FLAG, "simple:team-a", "*", True),
    ("proj/*:env/*:flag/*;simple", FLAG, "simple:team-a", "*", False),
    ("proj/*:env/*:flag/*;team-*", FLAG, "simple:team-a", "*", True),
    ("proj/*:env/*:flag/*;*-a", FLAG, "simple:team-a", "*", True),
    ("proj/*:env/*:flag/*;team-b", FLAG, "simple:team-a", "*", False),
    ("proj/*:env/*:flag/*;team-a", FLAG, "", "*", False),
    ("proj/*:env/*:flag/*;*", FLAG, "", "*", False),
    ("proj/*:env/*:flag/*;*", FLAG, "simple:anything", "*", True),
    ("proj/*:env/*:flag/*;team-a,beta", FLAG, "simple:team-a,simple:beta", "*", True),
    ("proj/*:env/*:flag/*;team-a,beta", FLAG, "simple:beta,simple:team-a", "*", True),
    ("proj/*:env/*:flag/*;team-a,beta", FLAG, "simple:team-a", "*", False),
    ("proj/*:env/*:flag/*;team-a,beta", FLAG, "simple:beta", "*", False),
    ("proj/*:env/*:flag/*;team-a,team-a", FLAG, "simple:team-a", "*", True),
    ("proj/*:env/*:flag/*;team-a,simple:team-a", FLAG, "simple:team-a", "*", True),
    ("proj/*:env/*:flag/*;team-a", FLAG, "team-a", "*", True),
    ("proj/*:env/*:flag/*;simple:team-a", FLAG, "team-a", "*", False),
    ("proj/*:env/*:flag/*;team-a", FLAG, "simple:team-a,simple:beta", "*", True),
    ("proj/*:env/*:flag/*", FLAG, "simple:team-a", "*", True),
    ("proj/*:env/*:flag/*", GLOBAL_FLAG, "simple:team-a", "*", True),
    ("proj/*:env/*:flag/checkout;team-a", FLAG, "simple:team-a", "*", True),
    ("proj/*:env/*:flag/other;team-a", FLAG, "simple:team-a", "*", False),
    ("proj/*;team-a:env/*:flag/*", FLAG, "simple:team-a", "*", False),
    ("proj/*:env/*;team-a:flag/*", FLAG, "simple:team-a", "*", False),
    ("proj/*:env/*;{critical:true}:flag/*;team-a", FLAG, "simple:team-a", "*", True),
    ("proj/*:env/*;{critical:true}:flag/*;team-a", STAGING_FLAG, "simple:team-a", "*", False),
    ("proj/*:env/*;{critical:true}:flag/*;team-a", FLAG, "", "*", False),
    ("proj/*:env/*;{critical:true}:flag/*;team-a", GLOBAL_FLAG, "simple:team-a", "*", True),
    ("proj/*:env/*:flag/*;release:q3,team-a", FLAG, "release:q3,simple:team-a", "*", True),
    # --- actions: globs over the event's names (LaunchDarkly action and raw Unleash type)
    ("proj/*:env/*:flag/*", FLAG, "", "updateOn", True),
    ("proj/*:env/*:flag/*", FLAG, "", "feature-environment-enabled", True),
    ("proj/*:env/*:flag/*", FLAG, "", "update*", True),
    ("proj/*:env/*:flag/*", FLAG, "", "*On", True),
    ("proj/*:env/*:flag/*", FLAG, "", "feature-environment-*", True),
    ("proj/*:env/*:flag/*", FLAG, "", "feature-*-enabled", True),
    ("proj/*:env/*:flag/*", FLAG, "", "createFlag", False),
    ("proj/*:env/*:flag/*", FLAG, "", "updateon", False),
    ("proj/*:env/*:flag/*", FLAG, "", "update", False),
    ("proj/*:env/*:flag/*", FLAG, "", "*-disabled", False),
    ("proj/*:env/*:flag/*", FLAG, "", "delete*", False),
    ("proj/*:env/*:flag/*", FLAG, "", "**", True),
    # --- every resource type
    ("acct", "acct", "", "*", True),
    ("acct", "proj/default", "", "*", False),
    ("proj/*", "acct", "", "*", False),
    ("application/*", "application/web", "", "*", True),
    ("application/web", "application/web", "", "*", True),
    ("application/ios", "application/web", "", "*", False),
    ("code-reference-repository/*", "code-reference-repository/main-repo", "", "*", True),
    ("code-reference-repository/*", FLAG, "", "*", False),
    ("proj/*:context-kind/*", "proj/default:context-kind/user", "", "*", True),
    ("context-kind/*", "proj/default:context-kind/user", "", "*", False),
    ("proj/*:env/*:experiment/*", "proj/default:env/production:experiment/exp-1", "", "*", True),
    ("proj/*:env/*:experiment/*", FLAG, "", "*", False),
    ("integration/*", "integration/webhook", "", "*", True),
    ("integration/web*", "integration/webhook", "", "*", True),
    ("integration/slack", "integration/webhook", "", "*", False),
    ("member/*", "member/alice@example.com", "", "*", True),
    ("member/*@example.com", "member/alice@example.com", "", "*", True),
    ("member/bob*", "member/alice@example.com", "", "*", False),
    ("proj/*:metric/*", "proj/default:metric/latency", "", "*", True),
    ("proj/*:metric/*", "proj/*:metric/latency", "", "*", True),
    ("proj/*:metric/errors", "proj/default:metric/latency", "", "*", False),
    ("relay-proxy-config/*", "relay-proxy-config/edge", "", "*", True),
    ("proj/*:release-pipeline/*", "proj/*:release-pipeline/standard", "", "*", True),
    ("proj/default:release-pipeline/*", "proj/*:release-pipeline/standard", "", "*", True),
    ("proj/*:release-pipeline/fast", "proj/*:release-pipeline/standard", "", "*", False),
    ("role/*", "role/admin", "", "*", True),
    ("role/ad*", "role/admin", "", "*", True),
    ("role/editor", "role/admin", "", "*", False),
    ("proj/*:env/*:segment/*", SEGMENT, "", "*", True),
    ("proj/*:env/production:segment/beta*", SEGMENT, "", "*", True),
    ("proj/*:env/*:segment/alpha", SEGMENT, "", "*", False),
    ("service-token/*", "service-token/admin", "", "*", True),
    ("service-token/client-*", "service-token/admin", "", "*", False),
    ("team/*", "team/platform", "", "*", True),
    ("team/mobile", "team/platform", "", "*", False),
    ("member/*:token/*", "member/alice:token/ci", "", "*", True),
    ("member/bob:token/*", "member/alice:token/ci", "", "*", False),
    ("token/*", "member/alice:token/ci", "", "*", False),
    ("member/*", "member/alice:token/ci", "", "*", False),
    ("webhook/*", "webhook/hook-1", "", "*", True),
    ("integration/*", "webhook/hook-1", "", "*", False),
    ("action-set/*", "action-set/auto-disable", "", "*", True),
    ("banner/*", "banner/42", "", "*", True),
    ("banner/4", "banner/42", "", "*", False),
    (
        "proj/*:env/*:change-request/*",
        "proj/default:env/production:change-request/7",
        "",
        "*",
        True,
    ),
    (
        "proj/*:env/*;{critical:true}:change-request/*",
        "proj/default:env/staging:change-request/7",
        "",
        "*",
        False,
    ),
    ("change-request/*", "proj/default:env/production:change-request/7", "", "*", False),
    ("context-field/*", "context-field/tenant", "", "*", True),
    ("context-field/region", "context-field/tenant", "", "*", False),
    ("public-signup-token/*", "public-signup-token/invite", "", "*", True),
    ("service-account/*", "service-account/ci-bot", "", "*", True),
    ("setting/*", "setting/remote-mcp-server", "", "*", True),
    ("signal-endpoint/*", "signal-endpoint/alerts", "", "*", True),
    ("signal-endpoint/*:token/*", "signal-endpoint/alerts:token/t1", "", "*", True),
    ("signal-endpoint/*", "signal-endpoint/alerts:token/t1", "", "*", False),
    ("strategy/*", "strategy/default", "", "*", True),
    ("strategy/flexible*", "strategy/flexibleRollout", "", "*", True),
    ("strategy/default", "strategy/flexibleRollout", "", "*", False),
    ("tag/*", "tag/team-a", "", "*", True),
    ("tag/Team-A", "tag/team-a", "", "*", False),
    ("tag-type/*", "tag-type/simple", "", "*", True),
    ("tag/*", "tag-type/simple", "", "*", False),
    ("unknown/*", "unknown/brand-new-type", "", "*", True),
    ("unknown/brand-*", "unknown/brand-new-type", "", "*", True),
    ("unknown/other", "unknown/brand-new-type", "", "*", False),
]


def _case_id(case: tuple[str, str, str, str, bool]) -> str:
    specifier, resource, tags, action, expected = case
    return f"{specifier} ~ {resource};{tags} [{action}] -> {expected}"


@pytest.mark.parametrize("case", CASES, ids=[_case_id(case) for case in CASES])
def test_policy_case(case: tuple[str, str, str, str, bool], make_target: MakeTarget) -> None:
    """An allow statement matches exactly the events the table says."""
    specifier, resource, tags, action, expected = case
    statements = parse_statements(
        [{"effect": "allow", "resources": [specifier], "actions": [action]}]
    )

    assert matches(statements, make_target(resource, tags)) is expected


def test_case_table_is_large_and_covers_every_resource_type() -> None:
    """The table has at least 150 rows and names every resource type at least once."""
    named = {
        segment.split("/")[0].split(";")[0] for case in CASES for segment in case[0].split(":")
    }

    assert len(CASES) >= 150
    assert named >= RESOURCE_TYPES


def test_case_table_rows_are_unique() -> None:
    """No row is written twice."""
    assert len(set(CASES)) == len(CASES)
