"""Retention: old events leave every index at once; newer ones and dedupe stay."""

from __future__ import annotations

from typing import Any

from relay.clock import rfc3339_ms
from relay.store import events, keys
from relay.store.client import Redis
from relay.store.retention import trim_events

OLD = "2022-01-01T00:00:00.000Z"
NEW = "2022-03-01T00:00:00.000Z"
CUTOFF = rfc3339_ms("2022-02-01T00:00:00Z")


def _flag_event(producer_id: int, created_at: str, **fields: Any) -> dict[str, Any]:
    return {
        "id": producer_id,
        "type": "feature-environment-enabled",
        "createdBy": "admin",
        "createdAt": created_at,
        "project": "p",
        "featureName": "f",
        **fields,
    }


def _members(client: Redis, key: str) -> list[int]:
    return [int(m) for m in client.zrange(key, 0, -1)]


def test_old_events_are_removed_from_every_index(redis_client: Redis) -> None:
    """An old event leaves its key, all, time, project, feature, pe/pg and the outbox."""
    # given
    old_env, old_global, new_env = events.record_events(
        redis_client,
        events=[
            _flag_event(1, OLD, environment="production"),
            _flag_event(2, OLD),
            _flag_event(3, NEW, environment="production"),
        ],
        source="s",
    )
    # when
    trimmed = trim_events(redis_client, older_than_ms=CUTOFF)
    # then
    assert trimmed == 2
    assert events.get_events(redis_client, ids=[old_env, old_global, new_env])[:2] == [None, None]
    for key in (
        keys.EVENTS_ALL,
        keys.EVENTS_TIME,
        keys.OUTBOX,
        keys.events_by_project("p"),
        keys.events_by_feature("f"),
        keys.flag_events_in_env("p", "production"),
    ):
        assert _members(redis_client, key) == [new_env], key
    assert not redis_client.exists(keys.global_flag_events("p"))


def test_the_cutoff_itself_is_kept(redis_client: Redis) -> None:
    """`older_than_ms` is exclusive: an event created exactly then stays."""
    [at_cutoff] = events.record_events(
        redis_client, events=[_flag_event(1, "2022-02-01T00:00:00Z")], source="s"
    )
    assert trim_events(redis_client, older_than_ms=CUTOFF) == 0
    assert events.get_events(redis_client, ids=[at_cutoff])[0] is not None


def test_trimming_works_through_more_events_than_one_batch(redis_client: Redis) -> None:
    """Many old events are trimmed in several transactions, all of them."""
    events.record_events(redis_client, events=[_flag_event(n, OLD) for n in range(11)], source="s")
    assert trim_events(redis_client, older_than_ms=CUTOFF, batch=4) == 11
    assert not redis_client.exists(keys.EVENTS_ALL, keys.EVENTS_TIME, keys.events_by_feature("f"))
    assert not redis_client.keys(keys.event("*"))


def test_a_trimmed_event_resent_is_not_recorded_again(redis_client: Redis) -> None:
    """Dedupe keys outlive the trim (they expire on their own TTL): no resurrection."""
    [first] = events.record_events(redis_client, events=[_flag_event(1, OLD)], source="s")
    trim_events(redis_client, older_than_ms=CUTOFF)
    assert events.record_events(redis_client, events=[_flag_event(1, OLD)], source="s") == [first]
    assert _members(redis_client, keys.EVENTS_ALL) == []
    assert redis_client.pttl(keys.dedupe("s", "1")) > 0


def test_nothing_to_trim_is_zero(redis_client: Redis) -> None:
    """An empty store trims nothing and does not fail."""
    assert trim_events(redis_client, older_than_ms=CUTOFF) == 0
