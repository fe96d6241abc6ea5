"""Unleash 8.2's label and summary of an event: a data table whose expected strings were
written by Unleash 8.2's own formatter for the same events (its markdown style, its links
to UNLEASH_URL)."""

from __future__ import annotations

from typing import Any

import pytest

from relay.ingest.event_summary import describe, js_number

U = "https://unleash.example.com"
FLAG = f"**[demo.flag]({U}/projects/default/features/demo.flag)**"
PROJECT = f"**[default]({U}/projects/default)**"
BASE: dict[str, Any] = {
    "id": 1,
    "createdBy": "admin",
    "createdAt": "2026-11-22T19:05:22.792Z",
    "createdByUserId": -42,
    "data": None,
    "preData": None,
    "tags": [],
    "featureName": "demo.flag",
    "project": "default",
    "environment": "production",
}
ROLLOUT = {
    "id": "s1",
    "name": "flexibleRollout",
    "title": None,
    "disabled": False,
    "constraints": [],
    "parameters": {"groupId": "demo.flag", "rollout": "50", "stickiness": "default"},
    "variants": [],
    "sortOrder": 0,
    "segments": [],
}

CASES: list[tuple[str, dict[str, Any], str, str]] = [
    (
        "enabled",
        {"type": "feature-environment-enabled"},
        "Flag enabled",
        f"**admin** enabled {FLAG} for the **production** environment in project {PROJECT}",
    ),
    (
        "project null",
        {"project": None, "environment": None, "type": "feature-created"},
        "Flag created",
        f"**admin** created **[demo.flag]({U}/projects/null/features/demo.flag)** in project ****",
    ),
    (
        "archived",
        {"environment": None, "type": "feature-archived"},
        "Flag archived",
        f"**admin** archived **demo.flag** in project {PROJECT}",
    ),
    (
        "token without username",
        {
            "data": {"tokenName": "admin"},
            "featureName": None,
            "project": "*",
            "environment": "*",
            "type": "api-token-created",
        },
        "API token created",
        "**admin** created API token ****",
    ),
    (
        "unknown type",
        {"featureName": None, "project": None, "environment": None, "type": "strategy-created"},
        "strategy-created",
        "**admin** triggered **strategy-created**",
    ),
    (
        "unknown type, no author",
        {"createdBy": "", "type": "no-such-type"},
        "no-such-type",
        "** triggered **no-such-type**",
    ),
    (
        "rollout change",
        {
            "data": {
                "id": "s1",
                "name": "flexibleRollout",
                "title": "canary",
                "disabled": False,
                "constraints": [
                    {"contextName": "tenant", "operator": "NUM_GT", "value": 5, "inverted": True},
                    {"contextName": "x", "operator": "WEIRD", "values": [None, 1]},
                ],
                "parameters": {"groupId": "g2", "rollout": "100", "stickiness": "default"},
                "variants": [],
                "sortOrder": 0,
                "segments": [1, 2],
            },
            "preData": {
                "id": "s1",
                "name": "flexibleRollout",
                "title": None,
                "disabled": False,
                "constraints": [
                    {
                        "contextName": "tenant",
                        "operator": "IN",
                        "values": ["a", "b"],
                        "inverted": False,
                    }
                ],
                "parameters": {"groupId": "demo.flag", "rollout": "50", "stickiness": "default"},
                "variants": [],
                "sortOrder": 0,
                "segments": [1],
            },
            "type": "feature-strategy-update",
        },
        "Flag strategy updated",
        f"**admin** updated {FLAG} in project {PROJECT} by updating "
        "strategy **canary** in **production** rollout from 50% to 100%; "
        "groupId from demo.flag to g2; constraints from [tenant is one of "
        "(a,b)] to [tenant not is a number greater than 5, x WEIRD (,1)]; "
        "segments from (1) to (1,2)",
    ),
    (
        "default strategy",
        {
            "data": {
                "name": "default",
                "constraints": [{"contextName": "c", "operator": "IN"}],
                "segments": [],
            },
            "preData": {"name": "default", "constraints": []},
            "type": "feature-strategy-update",
        },
        "Flag strategy updated",
        f"**admin** updated {FLAG} in project {PROJECT} by updating "
        "strategy **default** in **production** constraints from empty "
        "set of constraints to [c is one of (undefined)]",
    ),
    (
        "remote addresses",
        {
            "data": {"name": "remoteAddress", "parameters": {"IPs": "c"}},
            "preData": {"name": "remoteAddress", "parameters": {"IPs": "a,b"}},
            "type": "feature-strategy-update",
        },
        "Flag strategy updated",
        f"**admin** updated {FLAG} in project {PROJECT} by updating "
        "strategy **remoteAddress** in **production** IPs from [a,b] to "
        "[c]",
    ),
    (
        "host names, first",
        {
            "data": {"name": "applicationHostname", "parameters": {"hostNames": "h1"}},
            "type": "feature-strategy-update",
        },
        "Flag strategy updated",
        f"**admin** updated {FLAG} in project {PROJECT} by updating "
        "strategy **applicationHostname** in **production** hostNames to "
        "[h1]",
    ),
    (
        "custom strategy",
        {
            "data": {"name": "custom", "title": "T"},
            "environment": None,
            "type": "feature-strategy-update",
        },
        "Flag strategy updated",
        f"**admin** updated {FLAG} in project {PROJECT} by updating strategy **T** in **",
    ),
    (
        "strategy update without data",
        {"type": "feature-strategy-update"},
        "Flag strategy updated",
        f"**admin** updated {FLAG} in project {PROJECT} ",
    ),
    (
        "strategy added",
        {
            "data": {
                "id": "s1",
                "name": "flexibleRollout",
                "title": "",
                "disabled": False,
                "constraints": [],
                "parameters": {"groupId": "demo.flag", "rollout": "50", "stickiness": "default"},
                "variants": [],
                "sortOrder": 0,
                "segments": [],
            },
            "type": "feature-strategy-add",
        },
        "Flag strategy added",
        f"**admin** added strategy **flexibleRollout** to {FLAG} for the "
        f"**production** environment in project {PROJECT}",
    ),
    (
        "change request",
        {"data": {"changeRequestId": 7}, "type": "change-request-created"},
        "Change request created",
        "**admin** created change request "
        f"**[#7]({U}/projects/default/change-requests/7)** for feature "
        f"flag {FLAG} in the **production** environment in project "
        f"{PROJECT}",
    ),
    (
        "change request, no project",
        {"data": {"changeRequestId": 7}, "project": None, "type": "change-added"},
        "Change added",
        "**admin** added a change to change request ",
    ),
    (
        "scheduled",
        {
            "data": {"changeRequestId": 3, "scheduledDate": "2026-12-01T10:00:00.000Z"},
            "featureName": None,
            "environment": None,
            "type": "change-request-scheduled",
        },
        "Change request scheduled",
        "**admin** scheduled change request "
        f"**[#3]({U}/projects/default/change-requests/3)** in project "
        f"{PROJECT} to be applied at 2026-12-01T10:00:00.000Z.",
    ),
    (
        "tag with a number",
        {"data": {"type": "simple", "value": 5}, "environment": None, "type": "feature-tagged"},
        "Flag tagged",
        f"**admin** tagged {FLAG} with **simple:5** in project {PROJECT}",
    ),
    (
        "name is an array",
        {"data": {"name": ["a", None, 2]}, "featureName": None, "type": "segment-created"},
        "Segment created",
        "**admin** created segment **a,,2**",
    ),
    (
        "name is an object",
        {"data": {"name": {"first": "A"}}, "featureName": None, "type": "user-created"},
        "User created",
        "**admin** created user **[object Object]**",
    ),
    (
        "name is a tiny float",
        {"data": {"name": 1e-07}, "featureName": None, "type": "group-created"},
        "Group created",
        "**admin** created group **1e-7**",
    ),
    (
        "name is false",
        {"data": {"name": False}, "featureName": None, "type": "context-field-created"},
        "Context field created",
        "**admin** created context field **false**",
    ),
    (
        "data is text",
        {"data": "webhook", "featureName": None, "type": "addon-config-created"},
        "Integration configuration created",
        "**admin** created a new **** integration configuration",
    ),
    (
        "moved",
        {"data": {"oldProject": "old"}, "type": "feature-project-change"},
        "Flag moved to a new project",
        f"**admin** moved {FLAG} from **old** to {PROJECT}",
    ),
]


@pytest.mark.parametrize(("name", "fields", "label", "summary"), CASES, ids=[c[0] for c in CASES])
def test_label_and_summary_are_unleash_s(
    name: str, fields: dict[str, Any], label: str, summary: str
) -> None:
    """Word for word, links included; JavaScript's way of writing values into text."""
    described = describe({**BASE, **fields}, unleash_url=U)
    assert (described.label, described.summary) == (label, summary)


def test_a_missing_column_reads_as_the_null_unleash_stores() -> None:
    """An event without `project` links as Unleash would for its row (project NULL)."""
    event = {"type": "feature-created", "createdBy": "a", "featureName": "f"}
    summary = describe(event, unleash_url=U).summary
    assert summary == f"**a** created **[f]({U}/projects/null/features/f)** in project ****"


@pytest.mark.parametrize(
    "fields",
    [
        {"constraints": None, "segments": None},
        {"constraints": "text", "segments": {"a": 1}},
        {"constraints": [None, 3, "x"]},
        {"parameters": None},
    ],
)
def test_where_unleash_would_throw_the_value_reads_as_empty(fields: dict[str, Any]) -> None:
    """Unleash's formatter throws on these (its whole search fails); the relay describes them."""
    event = {**BASE, "type": "feature-strategy-update", "data": {**ROLLOUT, **fields}}
    described = describe(event, unleash_url=U)
    assert described.summary.startswith("**admin** updated **[demo.flag]")


@pytest.mark.parametrize(
    ("number", "text"),
    [
        (0.1, "0.1"),
        (1e21, "1e+21"),
        (1e-7, "1e-7"),
        (1.5e-7, "1.5e-7"),
        (1e16, "10000000000000000"),
        (100.0, "100"),
        (2**60, "1152921504606847000"),
        (1e-6, "0.000001"),
        (-0.5, "-0.5"),
        (5, "5"),
    ],
)
def test_numbers_read_as_javascript_writes_them(number: float, text: str) -> None:
    """String(n) of JavaScript: fixed from 1e-6 to 1e21, integers past 2^53 rounded."""
    assert js_number(number) == text
