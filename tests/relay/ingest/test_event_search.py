"""The event search's checks on stored events: exact within the bound, honest past it
(real Redis)."""

from __future__ import annotations

from typing import Any

from relay.clock import rfc3339_ms
from relay.ingest import event_search
from relay.ingest.event_search import EventQuery
from relay.store import events
from relay.store.client import Redis


def _record(client: Redis, count: int) -> list[dict[str, Any]]:
    """`count` events, one a second, every third a feature-created by user 7."""
    posted = []
    for n in range(count):
        kind, user = ("feature-created", 7) if n % 3 == 0 else ("feature-updated", 8)
        created = f"2026-11-22T10:{n // 60:02d}:{n % 60:02d}.000Z"
        posted.append(
            {"type": kind, "createdBy": "a", "createdByUserId": user, "createdAt": created}
        )
    ids = events.record_events(client, events=posted, source="s")
    return [{**event, "id": i} for event, i in zip(posted, ids, strict=True)]


def test_within_the_bound_the_answer_is_exact(redis_client: Redis) -> None:
    """Every candidate checked: the count and the page are the matches, newest first."""
    recorded = _record(redis_client, 300)
    found = event_search.search(redis_client, EventQuery(types=("feature-created",), limit=7))
    matches = [e["id"] for e in reversed(recorded) if e["type"] == "feature-created"]
    assert found.complete
    assert found.total == len(matches) == 100
    assert [e["id"] for e in found.events] == matches[:7]
    assert found.searched_back_to_ms is None


def test_past_the_bound_it_says_how_far_it_searched(redis_client: Redis) -> None:
    """A bounded search: matches among the newest events it read, and where it stopped."""
    # given: 3,000 events; a bound that reads 1,000 of them (a batch at a time)
    recorded = _record(redis_client, 3000)
    query = EventQuery(created_by=(7,), limit=5, offset=10)
    # when
    found = event_search.search(redis_client, query, documents_max=900)
    # then: the newest 1,000 events were read
    newest = list(reversed(recorded))
    read = newest[:1000]
    matches = [e["id"] for e in read if e["createdByUserId"] == 7]
    assert not found.complete
    assert found.total == len(matches)
    assert [e["id"] for e in found.events] == matches[10:15]
    assert found.searched_back_to_ms == rfc3339_ms(read[-1]["createdAt"])


def test_an_index_walk_past_its_bound_stops_the_search_too(redis_client: Redis) -> None:
    """A project over a window is walked; the bound on walking also ends the search."""
    # given: 2,500 events a second apart, every other one in project p
    posted = [
        {
            "type": "t",
            "createdBy": "a",
            "createdAt": f"2026-11-22T10:{n // 60:02d}:{n % 60:02d}.000Z",
            "project": "p" if n % 2 else "q",
            "data": {"n": n},
        }
        for n in range(2500)
    ]
    events.record_events(redis_client, events=posted, source="s")
    # when: a walk of at most 1,000 events
    query = EventQuery(projects=("p",), text="n", start_ms=0)
    found = event_search.search(redis_client, query, examine_max=1000)
    # then
    assert not found.complete
    assert found.total == 500
    assert found.searched_back_to_ms == rfc3339_ms(posted[1500]["createdAt"])
