"""The query plans (window, flags, complement, scan) give the same answers."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from relay.flag_events.experiment_cache import ExperimentCache
from relay.flag_events.facts import Filters
from relay.flag_events.impact import ImpactSize
from relay.flag_events.listing import FlagEventPage, FlagEventQuery, list_flag_events
from relay.store.client import Redis
from relay.store.evaluations import ToggleCounts, record_evaluations
from relay.store.events import record_events

MINUTE = 60_000
T = 1_800_000_000_000 - 30 * MINUTE  # a minute boundary; every event is after it


def _event(kind: str, flag: str, environment: str | None, at: int, **data: Any) -> dict[str, Any]:
    return {
        "type": kind,
        "createdBy": "alice@example.com",
        "createdAt": datetime.fromtimestamp(at / 1000, UTC).isoformat(timespec="milliseconds"),
        "featureName": flag,
        "project": "default",
        "environment": environment,
        "data": data or None,
    }


@pytest.fixture
def history(redis_client: Redis) -> None:
    """Five flags (one an experiment), ties, global events, 40 minutes; metrics early on."""
    flags = ["exp", "a", "b", "c", "d"]
    events = [_event("feature-created", "exp", None, T, type="experiment")]
    events += [_event("feature-created", f, None, T, type="release") for f in flags[1:]]
    for i in range(40):
        kind = "feature-environment-enabled" if i % 3 else "feature-environment-disabled"
        environment = None if i % 7 == 0 else ("production" if i % 5 else "staging")
        if environment is None:
            kind = "feature-tagged"
        events.append(_event(kind, flags[i % 5], environment, T + (i // 2) * 2 * MINUTE))
    events.append(_event("feature-environment-enabled", "exp", "production", T + 1))
    events.append(_event("feature-environment-disabled", "exp", "production", T + 9 * MINUTE))
    record_events(redis_client, events=events, source="test")
    # true in 10 at minute 3 and at minute 12: large, large and small changes between
    for flag, app, early, late in (("a", "web", 9, 1), ("b", "ios", 1, 9), ("c", "web", 5, 6)):
        for minute, share in ((3, early), (12, late)):
            record_evaluations(
                redis_client,
                environment="production",
                app=app,
                start_ms=T + minute * MINUTE,
                stop_ms=T + minute * MINUTE + 1000,
                toggles={flag: ToggleCounts(yes=share, no=10 - share)},
                retention_s=10**9,
                now_ms=T + 40 * MINUTE,
            )


def _walk(client: Redis, filters: Filters, *, max_planned_flags: int) -> tuple[list[str], int, str]:
    """Every page forward (limit 3); the ids in order, the total, the plan of the first."""
    cache = ExperimentCache()
    ids: list[str] = []
    after = None
    first: FlagEventPage | None = None
    while True:
        query = FlagEventQuery(
            filters=filters,
            start_ms=T,
            stop_ms=T + 60 * MINUTE,
            limit=3,
            after=after,
            max_planned_flags=max_planned_flags,
        )
        page = list_flag_events(client, query, cache=cache)
        first = first or page
        assert page.total == first.total
        ids += [item.position.member for item in page.items]
        if page.older is None:
            return ids, page.total, first.plan
        after = page.older


CASES: list[tuple[dict[str, Any], str]] = [
    ({}, "window"),
    ({"flag": "a"}, "flags"),
    ({"apps": frozenset({"web"})}, "flags"),
    ({"impact_size": ImpactSize.LARGE}, "flags"),
    ({"impact_size": ImpactSize.SMALL}, "flags"),
    ({"has_experiments": True}, "flags"),
    ({"has_experiments": False}, "complement"),
    ({"impact_size": ImpactSize.NONE}, "complement"),
    ({"impact_size": ImpactSize.NONE, "has_experiments": False}, "complement"),
    ({"apps": frozenset({"web", "ios"}), "has_experiments": False}, "flags"),
]


def _case_id(fields: dict[str, Any]) -> str:
    """The fields as text, sets sorted: every xdist worker must collect the same ids."""
    return str({k: sorted(v) if isinstance(v, frozenset) else v for k, v in fields.items()})


@pytest.mark.usefixtures("history")
@pytest.mark.parametrize(("fields", "plan"), CASES, ids=[_case_id(c[0]) for c in CASES])
def test_plans_agree(redis_client: Redis, fields: dict[str, Any], plan: str) -> None:
    """The chosen plan and the full scan list the same events in the same order."""
    filters = Filters(project="default", environment="production", **fields)
    chosen = _walk(redis_client, filters, max_planned_flags=2000)
    scanned = _walk(redis_client, filters, max_planned_flags=0)
    assert chosen[2] == plan
    assert scanned[2] == ("window" if not fields else "scan")
    assert chosen[:2] == scanned[:2]
    assert len(chosen[0]) == chosen[1] == len(set(chosen[0]))


@pytest.mark.usefixtures("history")
def test_filters_narrow_as_documented(redis_client: Redis) -> None:
    """A sanity check of the data: each filter keeps a strict, non-empty part."""
    every = _walk(
        redis_client, Filters(project="default", environment="production"), max_planned_flags=2000
    )
    for fields, _ in CASES[1:]:
        some = _walk(
            redis_client,
            Filters(project="default", environment="production", **fields),
            max_planned_flags=2000,
        )
        assert 0 < some[1] < every[1], fields
