"""The flag-events API through LaunchDarkly's client: reps, filters, impact, experiments."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from launchdarkly_api import ApiClient, Configuration, InsightsFlagEventsBetaApi
from launchdarkly_api.models.flag_event_collection_rep import FlagEventCollectionRep

from tests.support import post_events

MINUTE = 60_000
# half past a minute two hours ago: its ten-minute windows are whole minutes on both sides
T = (int(time.time() * 1000) // MINUTE - 120) * MINUTE + 30_000


@pytest.fixture
def ld(live_api: str, admin_headers: dict[str, str]) -> Iterator[InsightsFlagEventsBetaApi]:
    """The official client's flag-events API, pointed at the relay."""
    configuration = Configuration(host=live_api, api_key={"ApiKey": admin_headers["Authorization"]})
    with ApiClient(configuration) as client:
        yield InsightsFlagEventsBetaApi(client)


@pytest.fixture
def post(app_client: TestClient, admin_headers: dict[str, str]) -> Any:
    """Record events through `POST /api/events`; returns their relay ids."""

    def record(*events: dict[str, Any]) -> list[int]:
        return post_events(app_client, events, headers=admin_headers)

    return record


@pytest.fixture
def metrics(app_client: TestClient, admin_headers: dict[str, str]) -> Any:
    """Post one client-metrics bucket of one second at `at`."""

    def send(flag: str, at: int, yes: int, no: int, app: str = "web", **variants: int) -> None:
        bucket = {
            "start": _iso(at),
            "stop": _iso(at + 1000),
            "toggles": {flag: {"yes": yes, "no": no, "variants": variants}},
        }
        body = {"appName": app, "environment": "production", "bucket": bucket}
        response = app_client.post("/api/client/metrics", json=body, headers=admin_headers)
        assert response.status_code == 202, response.text

    return send


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")


def _event(kind: str, flag: str, environment: str | None, at: int, **fields: Any) -> dict[str, Any]:
    return {
        "type": kind,
        "createdBy": "alice@example.com",
        "createdAt": _iso(at),
        "featureName": flag,
        "project": "default",
        "environment": environment,
        "data": None,
        **fields,
    }


def _on(flag: str, at: int, environment: str = "production", **fields: Any) -> dict[str, Any]:
    return _event("feature-environment-enabled", flag, environment, at, **fields)


def _created(flag: str, at: int, flag_type: str = "release") -> dict[str, Any]:
    return _event("feature-created", flag, None, at, data={"name": flag, "type": flag_type})


def _flags(page: FlagEventCollectionRep) -> list[str]:
    return [item.flag_key for item in page.items]


def test_events_are_launchdarkly_flag_event_reps(ld: InsightsFlagEventsBetaApi, post: Any) -> None:
    """Each flag event of the project and environment, newest first, in the seed's shape."""
    # given
    created, enabled = post(
        _created("checkout.v2", T),
        _on("checkout.v2", T + 1000, createdBy="alice.smith@example.com", createdByUserId=7),
    )
    post(
        _event("feature-strategy-add", "checkout.v2", "staging", T + 2000),
        {"type": "strategy-created", "createdBy": "admin", "data": {"name": "x"}},
        {**_on("other", T + 3000), "project": "mobile"},
    )
    # when
    page = ld.get_flag_events("default", "production")
    # then
    assert page.total_count == 2
    first, second = page.items
    assert (first.event_type, first.event_time, first.flag_key) == (
        "feature-environment-enabled",
        T + 1000,
        "checkout.v2",
    )
    assert (first.project_key, first.environment_key) == ("default", "production")
    assert (
        first.description == "alice.smith@example.com turned on the flag checkout.v2 in production"
    )
    assert first.audit_log_entry_id == str(enabled)
    assert first.member is not None
    assert (first.member.id, first.member.email) == ("7", "alice.smith@example.com")
    assert (first.member.first_name, first.member.last_name) == ("Alice", "Smith")
    assert first.actions == ["updateOn"]
    assert first.impact.size == "none"
    assert first.impact.reason == "no evaluations recorded in the 10 minutes before or after"
    assert first.experiments is None
    assert second.audit_log_entry_id == str(created)
    assert second.environment_key is None and second.environment_id is None
    assert second.description == "alice@example.com created the flag checkout.v2"
    assert second.actions == ["createFlag"]
    assert page.links is not None and set(page.links) == {"self"}


def test_ids_are_stable_for_an_event(ld: InsightsFlagEventsBetaApi, post: Any) -> None:
    """The flag-event id is the same on every read, and for a global event in every env."""
    post(_created("f", T), _on("f", T + 1000), _on("f", T + 2000, "staging"))
    production = ld.get_flag_events("default", "production")
    again = ld.get_flag_events("default", "production")
    staging = ld.get_flag_events("default", "staging")
    assert [i.id for i in production.items] == [i.id for i in again.items]
    assert production.items[-1].id == staging.items[-1].id  # the global feature-created
    assert all(isinstance(i.id, uuid.UUID) for i in production.items)
    assert len({i.id for i in [*production.items, *staging.items]}) == 3
    assert production.items[0].project_id == staging.items[0].project_id
    assert production.items[0].environment_id != staging.items[0].environment_id


def test_global_events_are_included_unless_excluded(
    ld: InsightsFlagEventsBetaApi, post: Any
) -> None:
    """Environment-less flag events appear in every environment; global=exclude drops them."""
    post(_created("f", T), _on("f", T + 1000), _event("feature-tagged", "f", None, T + 2000))
    for environment in ("production", "staging"):
        included = ld.get_flag_events("default", environment, var_global="include")
        assert {i.event_type for i in included.items} >= {"feature-created", "feature-tagged"}
    excluded = ld.get_flag_events("default", "production", var_global="exclude")
    assert [i.event_type for i in excluded.items] == ["feature-environment-enabled"]
    assert excluded.total_count == 1


def test_query_keeps_one_flag(ld: InsightsFlagEventsBetaApi, post: Any) -> None:
    """`query` is the flag key: only that flag's events, counted."""
    post(_created("a", T), _on("a", T + 1000), _on("b", T + 2000), _on("ab", T + 3000))
    page = ld.get_flag_events("default", "production", query="a")
    assert (_flags(page), page.total_count) == (["a", "a"], 2)
    assert ld.get_flag_events("default", "production", query="zzz").total_count == 0


def test_application_key_keeps_flags_those_apps_evaluated(
    ld: InsightsFlagEventsBetaApi, post: Any, metrics: Any
) -> None:
    """Events of flags the listed apps evaluated in the environment; impact from those apps."""
    # given: web shifts flag a to true, ios keeps evaluating it as before; ios evaluates b
    post(_on("a", T), _on("b", T + 1000), _on("c", T + 2000))
    metrics("a", T - 5 * MINUTE, yes=0, no=10, app="web")
    metrics("a", T + 5 * MINUTE, yes=10, no=0, app="web")
    metrics("a", T - 5 * MINUTE, yes=5, no=5, app="ios")
    metrics("a", T + 5 * MINUTE, yes=5, no=5, app="ios")
    metrics("b", T + 5 * MINUTE, yes=1, no=0, app="ios")
    # when
    web = ld.get_flag_events("default", "production", application_key="web")
    both = ld.get_flag_events("default", "production", application_key="web,ios")
    ios = ld.get_flag_events("default", "production", application_key="ios")
    nobody = ld.get_flag_events("default", "production", application_key="android")
    # then
    assert (_flags(web), web.total_count) == (["a"], 1)
    assert (_flags(both), both.total_count) == (["b", "a"], 2)
    assert (_flags(nobody), nobody.total_count) == ([], 0)
    assert web.items[0].impact.percentage == 100.0
    assert both.items[1].impact.percentage == 50.0
    assert ios.items[1].impact.size == "none"
    assert ios.items[1].impact.reason.startswith("no change in the share of any variation")


def test_impact_sizes_from_posted_metrics(
    ld: InsightsFlagEventsBetaApi, post: Any, metrics: Any
) -> None:
    """Shares 10 minutes before and after each event give none, small, medium and large."""
    # given: one event per flag, and (before, after) yes/no counts around it
    counts = {
        "steady": ((50, 50), (25, 25)),
        "small": ((50, 50), (60, 40)),
        "medium": ((90, 10), (40, 60)),
        "large": ((10, 90), (95, 5)),
    }
    post(_on("unevaluated", T), *[_on(flag, T + i) for i, flag in enumerate(counts, 1)])
    for flag, ((yes_before, no_before), (yes_after, no_after)) in counts.items():
        metrics(flag, T - 9 * MINUTE, yes=yes_before, no=no_before)
        metrics(flag, T + 8 * MINUTE, yes=yes_after, no=no_after)
    # when
    page = ld.get_flag_events("default", "production")
    by_flag = {item.flag_key: item.impact for item in page.items}
    # then
    sizes = {flag: (impact.size, impact.percentage) for flag, impact in by_flag.items()}
    assert sizes == {
        "unevaluated": ("none", 0.0),
        "steady": ("none", 0.0),
        "small": ("small", 10.0),
        "medium": ("medium", 50.0),
        "large": ("large", 85.0),
    }
    large = by_flag["large"]
    assert large.reason == "share of true rose from 10% to 95% (100 evaluations before, 100 after)"
    assert large.evaluations_summary is not None and large.evaluations_summary.variations
    rows = [(v.value, v.before, v.after) for v in large.evaluations_summary.variations]
    assert rows == [(True, 10, 95), (False, 90, 5)]
    for size, expected in [
        ("none", {"unevaluated", "steady"}),
        ("small", {"small"}),
        ("medium", {"medium"}),
        ("large", {"large"}),
    ]:
        filtered = ld.get_flag_events("default", "production", impact_size=size)
        assert (set(_flags(filtered)), filtered.total_count) == (expected, len(expected))


def test_variants_appear_in_the_evaluation_summary(
    ld: InsightsFlagEventsBetaApi, post: Any, metrics: Any
) -> None:
    """Reported variants are variations of their own, next to true and false."""
    post(_on("v", T))
    metrics("v", T - 2 * MINUTE, yes=4, no=0, blue=4)
    metrics("v", T + 2 * MINUTE, yes=4, no=0, blue=1, green=3)
    [item] = ld.get_flag_events("default", "production").items
    assert item.impact.evaluations_summary is not None
    variations = item.impact.evaluations_summary.variations or []
    assert [(v.value, v.before, v.after) for v in variations] == [
        (True, 4, 4),
        (False, 0, 0),
        ("blue", 4, 1),
        ("green", 0, 3),
    ]
    assert (item.impact.size, item.impact.percentage) == ("medium", 75.0)


def test_experiments_are_periods_an_experiment_flag_was_on(
    ld: InsightsFlagEventsBetaApi, post: Any
) -> None:
    """Experiment flags' enabled periods are iterations; hasExperiments and expand use them."""
    # given: exp ran once and runs again; rel is a release flag; late became an experiment
    post(
        _created("exp", T, "experiment"),
        _on("exp", T + 1000),
        _event("feature-environment-disabled", "exp", "production", T + 2000),
        _on("exp", T + 3000),
        _created("rel", T + 4000),
        _on("rel", T + 5000),
        _created("late", T + 6000),
        _on("late", T + 7000),
        _event("feature-type-updated", "late", None, T + 8000, data={"type": "experiment"}),
    )
    # when
    expanded = ld.get_flag_events("default", "production", expand="experiments")
    with_experiments = ld.get_flag_events("default", "production", has_experiments=True)
    without = ld.get_flag_events("default", "production", has_experiments=False)
    staging = ld.get_flag_events("default", "staging", has_experiments=True)
    # then
    runs = {}
    for item in expanded.items:
        assert item.experiments is not None
        runs[item.flag_key] = [
            (e.key, e.iteration.status, e.iteration.started_at, e.iteration.ended_at)
            for e in item.experiments.items
        ]
        assert item.experiments.total_count == len(item.experiments.items)
    assert runs == {
        "exp": [
            ("exp", "stopped", T + 1000, T + 2000),
            ("exp", "running", T + 3000, None),
        ],
        "rel": [],
        "late": [("late", "running", T + 8000, None)],
    }
    assert set(_flags(with_experiments)) == {"exp", "late"}
    assert with_experiments.total_count == 7
    assert (set(_flags(without)), without.total_count) == ({"rel"}, 2)
    assert staging.total_count == 0
    assert ld.get_flag_events("default", "production").items[0].experiments is None


def test_experiment_answers_follow_new_events(ld: InsightsFlagEventsBetaApi, post: Any) -> None:
    """Between requests, a flag becoming an experiment or stopping one shows at once."""
    # given: a release flag, enabled; asked about once (the relay remembers what it read)
    post(_created("f", T), _on("f", T + 1000))
    assert ld.get_flag_events("default", "production", has_experiments=True).total_count == 0
    # when: it becomes an experiment
    post(_event("feature-type-updated", "f", None, T + 2000, data={"type": "experiment"}))
    running = ld.get_flag_events("default", "production", has_experiments=True)
    # and: it is turned off
    post(_event("feature-environment-disabled", "f", "production", T + 3000))
    stopped = ld.get_flag_events("default", "production", expand="experiments")
    # then
    assert running.total_count == 3
    runs = stopped.items[0].experiments
    assert runs is not None
    assert [(e.iteration.status, e.iteration.ended_at) for e in runs.items] == [
        ("stopped", T + 3000)
    ]
