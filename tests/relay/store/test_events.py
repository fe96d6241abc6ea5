"""The event store: one atomic record per event, its indexes, the outbox (real Redis)."""

from __future__ import annotations

import time
from typing import Any

from relay.clock import rfc3339_ms
from relay.store import events, keys
from relay.store.client import Redis

DAY_MS = 86_400_000


def _event(producer_id: int | None = None, **fields: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "type": "feature-environment-enabled",
        "createdBy": "admin",
        "createdAt": "2022-06-02T12:09:03.045Z",
        **fields,
    }
    if producer_id is not None:
        event["id"] = producer_id
    return event


def test_recorded_event_is_the_posted_one_with_relay_id_producer_id_and_source(
    redis_client: Redis,
) -> None:
    """`id` becomes the relay id; the producer's id is `producerId`; `source` is added."""
    # given
    posted = _event(930, data=None, tags=[{"type": "simple", "value": "t"}], project="p")
    # when
    [relay_id] = events.record_events(redis_client, events=[posted], source="unleash")
    # then
    [stored] = events.get_events(redis_client, ids=[relay_id])
    expected = {**posted, "id": relay_id, "producerId": 930, "source": "unleash"}
    assert stored == expected


def test_relay_ids_increase_across_calls(redis_client: Redis) -> None:
    """Relay ids are increasing natural numbers, one per new event, in input order."""
    first = events.record_events(redis_client, events=[_event(), _event()], source="s")
    second = events.record_events(redis_client, events=[_event()], source="s")
    assert first == [1, 2]
    assert second == [3]


def test_an_event_without_producer_id_has_no_producer_id_field(redis_client: Redis) -> None:
    """No producer id: no `producerId` in the record (and no dedupe key)."""
    [relay_id] = events.record_events(redis_client, events=[_event()], source="s")
    [stored] = events.get_events(redis_client, ids=[relay_id])
    assert stored is not None
    assert "producerId" not in stored
    assert not redis_client.keys(keys.dedupe("*", "*"))


def test_created_at_defaults_to_the_recording_time(redis_client: Redis) -> None:
    """An event without `createdAt` gets now, in RFC 3339 with milliseconds."""
    before = int(time.time() * 1000)
    event = _event(1)
    event.pop("createdAt")
    [relay_id] = events.record_events(redis_client, events=[event], source="s")
    after = int(time.time() * 1000)
    [stored] = events.get_events(redis_client, ids=[relay_id])
    assert stored is not None
    assert stored["createdAt"].endswith("Z")
    assert before - 1 <= rfc3339_ms(stored["createdAt"]) <= after


def test_indexes_cover_all_time_project_feature_and_flag_environment(redis_client: Redis) -> None:
    """Each event lands in every index it belongs to; flag events in pe or pg by createdAt."""
    # given
    in_env = _event(1, project="p", featureName="f", environment="production")
    global_flag = _event(2, project="p", featureName="f", environment=None, type="feature-created")
    project_only = _event(3, project="p", type="project-updated")
    nothing = _event(4, type="user-created")
    # when
    ids = events.record_events(
        redis_client, events=[in_env, global_flag, project_only, nothing], source="s"
    )
    # then
    created_ms = rfc3339_ms(in_env["createdAt"])
    assert redis_client.zrange(keys.EVENTS_ALL, 0, -1) == [str(i) for i in ids]
    assert redis_client.zrange(keys.events_by_project("p"), 0, -1) == [str(i) for i in ids[:3]]
    assert redis_client.zrange(keys.events_by_feature("f"), 0, -1) == [str(i) for i in ids[:2]]
    assert redis_client.zrange(
        keys.flag_events_in_env("p", "production"), 0, -1, withscores=True
    ) == [(str(ids[0]), float(created_ms))]
    assert redis_client.zrange(keys.global_flag_events("p"), 0, -1) == [str(ids[1])]
    assert redis_client.zscore(keys.EVENTS_TIME, str(ids[3])) == created_ms


def test_events_are_read_back_in_the_order_asked_with_none_for_missing(
    redis_client: Redis,
) -> None:
    """get_events keeps the order of the ids asked and gives None for unknown ones."""
    ids = events.record_events(redis_client, events=[_event(1), _event(2)], source="s")
    found = events.get_events(redis_client, ids=[ids[1], 999, ids[0]])
    assert [e and e["producerId"] for e in found] == [2, None, 1]


def test_event_ids_between_uses_created_at_inclusively_ascending(redis_client: Redis) -> None:
    """Replays select by createdAt, both ends included, oldest first."""
    stamps = ["2022-01-03T00:00:00Z", "2022-01-01T00:00:00Z", "2022-01-02T00:00:00Z"]
    ids = events.record_events(
        redis_client, events=[_event(n, createdAt=s) for n, s in enumerate(stamps)], source="s"
    )
    start, end = rfc3339_ms("2022-01-01T00:00:00Z"), rfc3339_ms("2022-01-02T00:00:00Z")
    assert events.event_ids_between(redis_client, start_ms=start, end_ms=end) == [ids[1], ids[2]]
    assert events.event_ids_between(redis_client, start_ms=0, end_ms=start - 1) == []


def test_new_events_wait_in_the_outbox_until_removed(redis_client: Redis) -> None:
    """Every new event enters the outbox in the same transaction; fan-out takes it out."""
    ids = events.record_events(redis_client, events=[_event(1), _event(2)], source="s")
    assert events.outbox_older_than(redis_client, age_ms=0) == ids
    assert events.outbox_older_than(redis_client, age_ms=60_000) == []
    assert events.outbox_older_than(redis_client, age_ms=0, limit=1) == ids[:1]
    events.remove_from_outbox(redis_client, ids=[ids[0]])
    assert events.outbox_older_than(redis_client, age_ms=0) == ids[1:]


def test_dedupe_keys_expire_after_the_retention_window(redis_client: Redis) -> None:
    """A dedupe key lives as long as the retention window it is given."""
    events.record_events(redis_client, events=[_event(7)], source="s", dedupe_ttl_ms=2 * DAY_MS)
    ttl = redis_client.pttl(keys.dedupe("s", "7"))
    assert 2 * DAY_MS - 60_000 < ttl <= 2 * DAY_MS


def test_event_page_is_newest_first_with_the_index_total(redis_client: Redis) -> None:
    """Pages come newest first; total counts the whole index, not the page."""
    ids = events.record_events(
        redis_client,
        events=[_event(n, project="p" if n % 2 else "q") for n in range(6)],
        source="s",
    )
    page = events.event_page(redis_client, project="p", offset=1, limit=1)
    assert page.total == 3
    assert [int(doc.split(",")[0].removeprefix('{"id":')) for doc in page.documents] == [ids[3]]
    assert events.event_page(redis_client, limit=None).total == 6
