"""Dedupe: a producer's event is recorded once per source, even when requests race."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import redis
from fastapi.testclient import TestClient

from relay.store import events, keys
from relay.store.client import Redis

EVENT: dict[str, Any] = {
    "id": 842,
    "type": "feature-environment-enabled",
    "createdBy": "user@company.com",
    "createdAt": "2022-05-12T08:49:49.521Z",
    "featureName": "my-constrained-toggle",
    "project": "my-project",
    "environment": "development",
}


def _count(client: Redis) -> int:
    return int(client.zcard(keys.EVENTS_ALL))


def test_the_same_producer_event_twice_is_recorded_once(redis_client: Redis) -> None:
    """A re-sent event gets the first relay id back and no second record or outbox entry."""
    # given
    [first] = events.record_events(redis_client, events=[EVENT], source="unleash")
    events.remove_from_outbox(redis_client, ids=[first])
    # when
    recorded = events.record(redis_client, events=[{**EVENT, "type": "changed"}], source="unleash")
    # then
    assert recorded.ids == [first]
    assert recorded.new_ids == []
    assert _count(redis_client) == 1
    assert events.outbox_older_than(redis_client, age_ms=0) == []
    [stored] = events.get_events(redis_client, ids=[first])
    assert stored is not None and stored["type"] == EVENT["type"]


def test_a_repeat_inside_one_batch_shares_the_first_id(redis_client: Redis) -> None:
    """Twice in one batch is still one record; both positions answer the same id."""
    recorded = events.record(
        redis_client, events=[EVENT, {**EVENT, "id": 843}, EVENT], source="unleash"
    )
    assert recorded.ids[0] == recorded.ids[2] != recorded.ids[1]
    assert recorded.new_ids == recorded.ids[:2]
    assert _count(redis_client) == 2


def test_the_same_producer_id_from_two_sources_is_two_events(redis_client: Redis) -> None:
    """Dedupe is per source: two Unleash servers may both have an event 842."""
    a = events.record_events(redis_client, events=[EVENT], source="unleash-eu")
    b = events.record_events(redis_client, events=[EVENT], source="unleash-us")
    assert a != b
    assert _count(redis_client) == 2


def test_events_without_producer_id_are_never_deduped(redis_client: Redis) -> None:
    """No producer id, no dedupe: identical bodies are distinct events."""
    anonymous = {k: v for k, v in EVENT.items() if k != "id"}
    ids = events.record_events(redis_client, events=[anonymous, anonymous], source="s")
    ids += events.record_events(redis_client, events=[anonymous], source="s")
    assert len(set(ids)) == 3


def test_string_and_integer_producer_ids_dedupe_by_their_text(redis_client: Redis) -> None:
    """A UUID-style producer id dedupes like an integer one."""
    uuid_event = {**EVENT, "id": "5f0c-uuid"}
    first = events.record_events(redis_client, events=[uuid_event], source="s")
    again = events.record_events(redis_client, events=[uuid_event], source="s")
    assert first == again


def test_racing_writers_with_one_producer_id_record_one_event(
    redis_client: Redis, redis_url: str
) -> None:
    """Twelve clients recording the same event at the same instant: one record, one id."""
    # given
    start = threading.Barrier(12)

    def record_once(_: int) -> list[int]:
        own = redis.Redis.from_url(redis_url, decode_responses=True)
        try:
            start.wait()
            return events.record_events(own, events=[EVENT], source="unleash")
        finally:
            own.close()

    # when
    with ThreadPoolExecutor(12) as pool:
        answers = list(pool.map(record_once, range(12)))
    # then
    assert len({tuple(answer) for answer in answers}) == 1
    assert _count(redis_client) == 1
    assert len(events.outbox_older_than(redis_client, age_ms=0)) == 1


def test_concurrent_http_posts_of_one_event_record_it_once(
    live_api: str, redis_client: Redis, admin_headers: dict[str, str]
) -> None:
    """Over real HTTP, racing webhook deliveries of one event all get 202 and the same id."""
    # given
    start = threading.Barrier(8)

    def post(_: int) -> httpx.Response:
        with httpx.Client(base_url=live_api, headers=admin_headers) as http:
            start.wait()
            return http.post("/api/events", params={"source": "unleash"}, json=EVENT)

    # when
    with ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(post, range(8)))
    # then
    assert {r.status_code for r in responses} == {202}
    assert len({tuple(r.json()["ids"]) for r in responses}) == 1
    assert _count(redis_client) == 1


def test_a_resent_webhook_answers_the_first_relay_id(
    app_client: TestClient, admin_headers: dict[str, str], redis_client: Redis
) -> None:
    """The API answers a duplicate with the first id, and records nothing new."""
    first = app_client.post("/api/events?source=unleash", json=EVENT, headers=admin_headers)
    again = app_client.post("/api/events?source=unleash", json=[EVENT], headers=admin_headers)
    assert first.status_code == again.status_code == 202
    assert first.json() == again.json()
    assert _count(redis_client) == 1


def test_without_source_the_token_names_the_source(
    app_client: TestClient, admin_headers: dict[str, str], redis_client: Redis
) -> None:
    """Two tokens posting the same producer id are two sources; one token twice is one."""
    # given
    created = app_client.post(
        "/api/v2/tokens", json={"name": "hook", "role": "ingest"}, headers=admin_headers
    ).json()
    ingest_headers = {"Authorization": created["token"]}
    # when
    by_ingest = app_client.post("/api/events", json=EVENT, headers=ingest_headers).json()
    by_ingest_again = app_client.post("/api/events", json=EVENT, headers=ingest_headers).json()
    by_admin = app_client.post("/api/events", json=EVENT, headers=admin_headers).json()
    # then
    assert by_ingest == by_ingest_again != by_admin
    [stored] = events.get_events(redis_client, ids=by_ingest["ids"])
    assert stored is not None and stored["source"] == created["_id"]
