"""Recorded events: stored, indexed and put in the fan-out outbox in one Lua script.

A recorded event is the Unleash event as posted, with `id` = the relay id (an increasing
natural number), the producer's id kept as `producerId` (absent when it sent none) and
`source`; `createdAt` is RFC 3339, defaulted to the recording time. `(source, producerId)`
is the dedupe key: a re-sent event is answered with its first relay id, not re-recorded.

A flag event is one with both `project` and `featureName`: it is also indexed by
project and environment (`pe`), or as global to the project when it has no environment
(`pg`), both scored by `createdAt` for the flag-events API.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Final

from pydantic import TypeAdapter

from relay.clock import now_ms, now_rfc3339, rfc3339_ms
from relay.store import keys, scripts
from relay.store.client import Redis, translate_errors
from relay.store.scripts import EventArgs

DAY_MS: Final = 86_400_000
DEFAULT_RETENTION_MS: Final = 30 * DAY_MS
# the most event JSON one page of a read API holds (one event always fits, however large):
# 1000 events of up to RELAY_MAX_BODY_BYTES each would be gigabytes in one answer
PAGE_MAX_BYTES: Final = 4 * 1024 * 1024

_DOCUMENT: Final = TypeAdapter(dict[str, Any])


@dataclass(frozen=True)
class Recorded:
    """The outcome of recording a batch: a relay id per input event, and the new ones."""

    ids: list[int]
    new_ids: list[int]
    source: str = ""  # the source the events were recorded under


@dataclass(frozen=True)
class Refused:
    """A request whose token the record script refused: unknown, or a role not allowed."""

    role: str | None  # None: no such token (or revoked)


@dataclass(frozen=True)
class EventPage:
    """Recorded events as stored JSON, newest first, and how many the index holds."""

    documents: list[str]
    total: int


@dataclass(frozen=True)
class RecordRequest:
    """One request's valid events (relay.ingest.unleash_event), as the record script reads them."""

    events: list[EventArgs]
    source: str  # '' = the id of the token behind `token_hash_key`
    token_hash_key: str = ""  # '' = the caller's token was checked already

    @property
    def count(self) -> int:
        return len(self.events)


def prepare(
    events: Sequence[Mapping[str, Any]], *, source: str, token_hash_key: str = ""
) -> RecordRequest:
    """Turn events into a RecordRequest (CPU only: no Redis)."""
    now_text = now_rfc3339()
    args = [_event_args(event, now_text=now_text) for event in events]
    return RecordRequest(events=args, source=source, token_hash_key=token_hash_key)


def record_requests(
    client: Redis,
    requests: Sequence[RecordRequest],
    *,
    dedupe_ttl_ms: int = DEFAULT_RETENTION_MS,
    allowed_roles: Iterable[str] = (),
) -> list[Recorded | Refused]:
    """Record several requests' events in one script call; an outcome per request, in order.

    A request with a `token_hash_key` is recorded only if that token exists and has one
    of `allowed_roles`; each request is all or nothing, and dedupe spans all of them.
    """
    results = scripts.record(
        client,
        requests=requests,
        dedupe_ttl_ms=dedupe_ttl_ms,
        now_ms=now_ms(),
        allowed_roles=allowed_roles,
    )
    return [_outcome(request, result) for request, result in zip(requests, results, strict=True)]


def _outcome(request: RecordRequest, result: list[Any]) -> Recorded | Refused:
    if not int(result[0]):
        return Refused(role=str(result[2]) if result[1] == "forbidden" else None)
    flat = result[2:]
    ids = [int(value) for value in flat[0::2]]
    new_ids = [i for i, new in zip(ids, flat[1::2], strict=True) if int(new)]
    return Recorded(ids=ids, new_ids=new_ids, source=request.source or str(result[1]))


def record(
    client: Redis,
    *,
    events: Sequence[Mapping[str, Any]],
    source: str,
    dedupe_ttl_ms: int = DEFAULT_RETENTION_MS,
) -> Recorded:
    """Record valid Unleash events (relay.ingest.unleash_event) atomically, deduped by producer."""
    if not events:
        return Recorded(ids=[], new_ids=[], source=source)
    if not source:
        raise ValueError("a source is required")
    [outcome] = record_requests(
        client, [prepare(events, source=source)], dedupe_ttl_ms=dedupe_ttl_ms
    )
    assert isinstance(outcome, Recorded)  # no token to refuse
    return outcome


def record_events(
    client: Redis,
    *,
    events: Sequence[Mapping[str, Any]],
    source: str,
    dedupe_ttl_ms: int = DEFAULT_RETENTION_MS,
) -> list[int]:
    """Record events in one transaction; the relay id of each (the first one for a re-send)."""
    return record(client, events=events, source=source, dedupe_ttl_ms=dedupe_ttl_ms).ids


def _event_args(event: Mapping[str, Any], *, now_text: str) -> EventArgs:
    """One event as the record script takes it (relay/store/lua/record.lua)."""
    document = dict(event)
    producer_id = document.pop("id", None)
    document.pop("producerId", None)
    document.pop("source", None)  # the script writes the source last
    if document.get("createdAt") is None:
        document["createdAt"] = now_text
    if producer_id is not None:
        document["producerId"] = producer_id
    project, feature, flag = _indexes(document)
    return EventArgs(
        str(rfc3339_ms(document["createdAt"])),
        "" if producer_id is None else str(producer_id),
        project,
        feature,
        flag,
        _DOCUMENT.dump_json(document)[1:-1],  # the script adds the braces, `id` and `source`
    )


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _indexes(document: Mapping[str, Any]) -> tuple[str, str, str]:
    return _index_keys(
        _text(document.get("project")),
        _text(document.get("featureName")),
        _text(document.get("environment")),
    )


@lru_cache(maxsize=4096)  # a batch's events share a few projects, flags and environments
def _index_keys(project: str, feature: str, environment: str) -> tuple[str, str, str]:
    flag = ""
    if project and feature:
        flag = (
            keys.flag_events_in_env(project, environment)
            if environment
            else keys.global_flag_events(project)
        )
    return (
        keys.events_by_project(project) if project else "",
        keys.events_by_feature(feature) if feature else "",
        flag,
    )


def index_keys(document: Mapping[str, Any]) -> list[str]:
    """The per-event index keys (project, feature, pe/pg) a recorded event is in."""
    return [key for key in _indexes(document) if key]


def get_event_documents(client: Redis, *, ids: Sequence[int]) -> list[str | None]:
    """The stored JSON of each event (None where there is none), in the order asked."""
    if not ids:
        return []
    with translate_errors():
        found: list[Any] = client.mget([keys.event(i) for i in ids])
    return [None if text is None else str(text) for text in found]


def get_events(client: Redis, *, ids: Sequence[int]) -> list[dict[str, Any] | None]:
    """The recorded events (None where there is none, e.g. trimmed), in the order asked."""
    return [
        None if text is None else json.loads(text) for text in get_event_documents(client, ids=ids)
    ]


def event_page(
    client: Redis,
    *,
    project: str | None = None,
    feature: str | None = None,
    offset: int = 0,
    limit: int | None = None,
) -> EventPage:
    """Events newest first: all of them, a project's, or a feature's; `limit` None = all."""
    index = keys.EVENTS_ALL
    if feature is not None:
        index = keys.events_by_feature(feature)
    elif project is not None:
        index = keys.events_by_project(project)
    stop = -1 if limit is None else offset + limit - 1
    with translate_errors():
        pipe = client.pipeline(transaction=True)
        pipe.zrevrange(index, offset, stop)
        pipe.zcard(index)
        members, total = pipe.execute()
    ids = _within_budget(client, ids_of(members))
    documents = get_event_documents(client, ids=ids)
    return EventPage(documents=[d for d in documents if d is not None], total=int(total))


def _within_budget(client: Redis, ids: list[int]) -> list[int]:
    """The first of `ids` whose documents fit in PAGE_MAX_BYTES together (at least one)."""
    with translate_errors():
        pipe = client.pipeline(transaction=False)
        for event_id in ids:
            pipe.strlen(keys.event(event_id))
        sizes: list[int] = pipe.execute()
    used = 0
    for count, size in enumerate(sizes):
        used += size
        if used > PAGE_MAX_BYTES and count > 0:
            return ids[:count]
    return ids


def event_ids_between(client: Redis, *, start_ms: int, end_ms: int) -> list[int]:
    """Ids of events with start_ms <= createdAt <= end_ms, by createdAt ascending."""
    with translate_errors():
        members = client.zrangebyscore(keys.EVENTS_TIME, start_ms, end_ms)
    return ids_of(members)


def outbox_older_than(client: Redis, *, age_ms: int, limit: int | None = None) -> list[int]:
    """Events put in the fan-out outbox at least `age_ms` ago and still there, oldest first."""
    cutoff = now_ms() - age_ms
    with translate_errors():
        if limit is None:
            members = client.zrangebyscore(keys.OUTBOX, "-inf", cutoff)
        else:
            members = client.zrangebyscore(keys.OUTBOX, "-inf", cutoff, start=0, num=limit)
    return ids_of(members)


def remove_from_outbox(client: Redis, *, ids: Iterable[int]) -> None:
    """Take fanned-out events out of the outbox."""
    members = list(ids)
    if members:
        with translate_errors():
            pipe = client.pipeline(transaction=True)
            pipe.zrem(keys.OUTBOX, *members)
            pipe.zrem(keys.OUTBOX_IDS, *members)
            pipe.execute()


def ids_of(members: Iterable[Any]) -> list[int]:
    """Event ids from the members of an index."""
    return [int(member) for member in members]
