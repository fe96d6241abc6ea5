"""Walking the flag-event indexes: order, ties within a millisecond, cursors, counts."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from relay.store.client import Redis
from relay.store.events import record_events
from relay.store.flag_events import (
    Position,
    count_between,
    flag_positions,
    index_keys,
    positions_between,
    walk,
)

T0 = 1_700_000_000_000


def _event(at: int, flag: str, environment: str | None) -> dict[str, Any]:
    return {
        "type": "feature-environment-enabled" if environment else "feature-tagged",
        "createdBy": "alice@example.com",
        "createdAt": datetime.fromtimestamp(at / 1000, UTC).isoformat(timespec="milliseconds"),
        "featureName": flag,
        "project": "default",
        "environment": environment,
    }


@pytest.fixture
def recorded(redis_client: Redis) -> list[int]:
    """Twenty-four events over three milliseconds (many ties), in an env and global."""
    events = [
        _event(T0 + (i % 3), f"flag-{i % 4}", "production" if i % 2 else None) for i in range(24)
    ]
    events.append(_event(T0, "elsewhere", "staging"))
    return record_events(redis_client, events=events, source="test")


@pytest.mark.parametrize("newest_first", [True, False])
@pytest.mark.parametrize("batch", [1, 2, 5, 256])
def test_walk_resumes_exactly_after_any_position(
    redis_client: Redis, recorded: list[int], newest_first: bool, batch: int
) -> None:
    """From every cursor, the walk yields exactly the rest of the order, ties included."""
    index = index_keys(project="default", environment="production", include_global=True)
    everything = positions_between(redis_client, index=index, start_ms=T0, stop_ms=T0 + 2)
    ordered = list(reversed(everything)) if newest_first else everything
    assert len(ordered) == 24
    for at, past in enumerate([None, *ordered]):
        rest = walk(
            redis_client,
            index=index,
            start_ms=T0,
            stop_ms=T0 + 2,
            newest_first=newest_first,
            past=past,
            batch=batch,
        )
        assert list(rest) == ordered[at:]


def test_order_is_time_then_member_as_redis_sorts(redis_client: Redis, recorded: list[int]) -> None:
    """Positions sort by createdAt, then by id as Redis orders members (bytewise)."""
    index = index_keys(project="default", environment="production", include_global=True)
    found = positions_between(redis_client, index=index, start_ms=T0, stop_ms=T0 + 2)
    assert found == sorted(found, key=lambda p: (p.time_ms, p.member.encode()))
    assert {p.event_id for p in found} == set(recorded[:24])


def test_window_bounds_are_inclusive_and_counted(redis_client: Redis, recorded: list[int]) -> None:
    """count_between counts [start, stop] over both indexes, or the env alone."""
    both = index_keys(project="default", environment="production", include_global=True)
    env_only = index_keys(project="default", environment="production", include_global=False)
    assert count_between(redis_client, index=both, start_ms=T0, stop_ms=T0 + 2) == 24
    assert count_between(redis_client, index=both, start_ms=T0 + 1, stop_ms=T0 + 1) == 8
    assert count_between(redis_client, index=env_only, start_ms=T0, stop_ms=T0 + 2) == 12


def test_flag_positions_intersect_with_the_feature_index(
    redis_client: Redis, recorded: list[int]
) -> None:
    """Only the asked flags' events in the indexes come back, each with its flag."""
    index = index_keys(project="default", environment="production", include_global=True)
    found = flag_positions(
        redis_client, index=index, flags=["flag-1", "flag-2"], start_ms=T0, stop_ms=T0 + 1
    )
    everything = positions_between(redis_client, index=index, start_ms=T0, stop_ms=T0 + 1)
    expected = [p for p in everything if (p.event_id - recorded[0]) % 4 in (1, 2)]
    assert [p for p, _ in found] == expected
    assert {flag for _, flag in found} == {"flag-1", "flag-2"}


@pytest.mark.parametrize("text", ["1700000000000.42", "-5.1", "0.0"])
def test_cursor_round_trip(text: str) -> None:
    """A position's cursor text reads back as the same position."""
    position = Position.from_cursor(text)
    assert position is not None and position.cursor == text


@pytest.mark.parametrize(
    "text", ["", "abc", "1.2.3", "1.", ".1", "1.-2", "1e3.4", "12345678901234567.1"]
)
def test_foreign_cursors_are_refused(text: str) -> None:
    """Anything that is not `{ms}.{id}` is not a cursor."""
    assert Position.from_cursor(text) is None
