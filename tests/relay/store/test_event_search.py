"""The indexed part of the event search against a brute-force oracle (real Redis).

Events share createdAt times a lot (a batch recorded without one, a transaction in
Unleash), their relay ids cross 999 -> 1000 (Redis orders equal scores by bytes, so '999'
after '1000'), and their times do not follow their ids: the order must still be createdAt,
then id, both descending.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from relay.store import event_search, events, keys
from relay.store.client import Redis
from relay.store.event_search import CandidateStream, IndexedFilter

BASE_MS = 1_790_000_000_000
PROJECTS = ("big", "mid", "tiny")


@dataclass(frozen=True)
class Stored:
    id: int
    created_ms: int
    project: str | None
    feature: str | None


def _iso(ms: int) -> str:
    moment = datetime.fromtimestamp(ms / 1000, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


@pytest.fixture
def stored(redis_client: Redis) -> list[Stored]:
    """1,500 events over 40 distinct times (ids 1-1,500), recorded in shuffled time order."""
    rng = random.Random(17)
    times = [BASE_MS + rng.randrange(0, 3_000_000) for _ in range(40)]
    posted, shape = [], []
    for n in range(1500):
        created = rng.choice(times)
        project = rng.choices([*PROJECTS, None], weights=[80, 15, 1, 4])[0]
        feature = f"flag-{rng.randrange(60)}" if project and rng.random() < 0.9 else None
        event = {"type": "feature-updated", "createdBy": "t", "createdAt": _iso(created)}
        event |= {"project": project, "featureName": feature}
        posted.append(event)
        shape.append((created, project, feature))
        del n
    ids = []
    for start in range(0, len(posted), 250):
        ids += events.record_events(redis_client, events=posted[start : start + 250], source="s")
    return [Stored(i, *fields) for i, fields in zip(ids, shape, strict=True)]


def _expected(stored: list[Stored], filter_: IndexedFilter) -> list[int]:
    def kept(event: Stored) -> bool:
        return (
            (filter_.start_ms is None or event.created_ms >= filter_.start_ms)
            and (filter_.end_ms is None or event.created_ms < filter_.end_ms)
            and (not filter_.projects or event.project in filter_.projects)
            and (not filter_.features or event.feature in filter_.features)
            and (not filter_.ids or event.id in filter_.ids)
        )

    newest_first = sorted(stored, key=lambda e: (e.created_ms, e.id), reverse=True)
    return [e.id for e in newest_first if kept(e)]


MID_MS = BASE_MS + 1_500_000
FILTERS = [
    IndexedFilter(),
    IndexedFilter(start_ms=MID_MS),
    IndexedFilter(end_ms=MID_MS),
    IndexedFilter(start_ms=BASE_MS + 500_000, end_ms=BASE_MS + 2_000_000),
    IndexedFilter(projects=("big",)),  # most events: walked
    IndexedFilter(projects=("tiny",)),  # a few: read whole
    IndexedFilter(projects=("mid", "tiny")),
    IndexedFilter(projects=("big",), start_ms=MID_MS),
    IndexedFilter(features=("flag-3",)),
    IndexedFilter(features=("flag-3", "flag-4"), projects=("big",)),
    IndexedFilter(features=("flag-7",), end_ms=MID_MS),
    IndexedFilter(projects=("big", "mid"), features=("flag-1", "flag-2", "flag-9")),
    IndexedFilter(ids=(5, 999, 1000, 1001, 1499, 77777)),
    IndexedFilter(ids=(5, 999, 1000, 1001, 1499), projects=("big",), start_ms=MID_MS),
    IndexedFilter(projects=("no-such-project",)),
    IndexedFilter(start_ms=BASE_MS + 9_000_000),
]


@pytest.mark.parametrize("filter_", FILTERS)
@pytest.mark.parametrize(("offset", "limit"), [(0, 50), (0, 1000), (37, 13), (990, 20), (5000, 10)])
def test_a_page_is_the_oracles_slice_and_the_total_its_length(
    redis_client: Redis, stored: list[Stored], filter_: IndexedFilter, offset: int, limit: int
) -> None:
    """Any filter, any page: createdAt then id descending, with the exact count."""
    expected = _expected(stored, filter_)
    page = event_search.search_page(redis_client, filter_, offset=offset, limit=limit)
    assert page.ids == expected[offset : offset + limit]
    assert page.total == len(expected)
    assert page.complete


@pytest.mark.parametrize("filter_", FILTERS)
def test_candidates_come_newest_first_all_of_them(
    redis_client: Redis, stored: list[Stored], filter_: IndexedFilter
) -> None:
    """The candidate stream (for filters the indexes cannot answer) yields every kept id once."""
    stream = CandidateStream(redis_client, filter_, chunk=100)
    streamed = [event_id for chunk in stream for event_id in chunk]
    assert streamed == _expected(stored, filter_)
    assert stream.exhausted


def test_ids_of_one_time_across_999_and_1000_come_by_id(redis_client: Redis) -> None:
    """Redis would answer '999' after '1000' for equal scores; the search answers by id."""
    # given: 1,100 events at one time, then one newer
    same = {"type": "t", "createdBy": "a", "createdAt": _iso(BASE_MS), "project": "p"}
    ids = events.record_events(redis_client, events=[same] * 1000, source="s")
    ids += events.record_events(redis_client, events=[same] * 100, source="s")
    newer = {**same, "createdAt": _iso(BASE_MS + 1)}
    [newest] = events.record_events(redis_client, events=[newer], source="s")
    # when
    pages = [
        event_search.search_page(redis_client, IndexedFilter(), offset=o, limit=7)
        for o in (0, 98, 99, 100, 101)
    ]
    walked = event_search.search_page(
        redis_client, IndexedFilter(projects=("p",)), offset=95, limit=10
    )
    # then
    order = [newest, *sorted(ids, reverse=True)]
    assert [p.ids for p in pages] == [order[o : o + 7] for o in (0, 98, 99, 100, 101)]
    assert walked.ids == order[95:105]


def test_a_walk_past_its_bound_says_so_and_counts_what_it_examined(
    redis_client: Redis, stored: list[Stored]
) -> None:
    """A bounded walk: the page it found, matches among the examined, where it stopped."""
    # when: the most common project, walking at most 400 events
    filter_ = IndexedFilter(projects=("big",), start_ms=BASE_MS)
    page = event_search.search_page(redis_client, filter_, offset=0, limit=20, examine_max=400)
    # then
    newest_first = sorted(stored, key=lambda e: (e.created_ms, e.id), reverse=True)
    examined = [e for e in newest_first if e.created_ms >= BASE_MS][: page.examined]
    assert 400 <= page.examined < len(stored)
    assert not page.complete
    assert page.ids == [e.id for e in examined if e.project == "big"][:20]
    assert page.total == sum(1 for e in examined if e.project == "big")
    assert page.searched_back_to_ms == examined[-1].created_ms


def test_an_unwindowed_single_filter_is_counted_by_its_index_not_walked(
    redis_client: Redis, stored: list[Stored]
) -> None:
    """One project, no dates: the page is walked only until it is full; the count is exact."""
    page = event_search.search_page(
        redis_client, IndexedFilter(projects=("big",)), offset=0, limit=5, examine_max=100
    )
    assert page.complete
    assert page.total == sum(1 for e in stored if e.project == "big")
    assert page.ids == _expected(stored, IndexedFilter(projects=("big",)))[:5]


def test_stored_events_are_read_in_batches_of_bounded_size(redis_client: Redis) -> None:
    """Never more than the byte bound in one read (one event always); gone events are None."""
    # given: events of 1, 2 and 3 kB, one of them trimmed since
    sizes = [1000, 2000, 3000, 1000, 2000]
    posted = [{"type": "t", "createdBy": "a", "data": "x" * size} for size in sizes]
    ids = events.record_events(redis_client, events=posted, source="s")
    redis_client.delete(keys.event(ids[3]))
    # when
    batches = list(event_search.read_documents(redis_client, ids, max_bytes=3500))
    page = event_search.fetch_documents(redis_client, ids, max_bytes=3500)
    # then
    assert [[i for i, _ in batch] for batch in batches] == [ids[0:2], ids[2:4], ids[4:5]]
    assert [text is None for batch in batches for _, text in batch] == [0, 0, 0, 1, 0]
    assert [i for i, _ in page] == ids[0:2]
    assert event_search.fetch_documents(redis_client, ids[2:], max_bytes=10) == [
        (ids[2], redis_client.get(keys.event(ids[2])))
    ]
