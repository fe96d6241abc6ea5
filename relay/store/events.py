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
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from pydantic import TypeAdapter

from relay.store import event_scripts, keys
from relay.store.client import Redis, translate_errors
from relay.unleash import now_rfc3339, rfc3339_ms

DAY_MS: Final = 86_400_000
DEFAULT_RETENTION_MS: Final = 30 * DAY_MS

_DOCUMENT: Final = TypeAdapter(dict[str, Any])
_SCRIPT_KEYS: Final = (keys.EVENT_SEQ, keys.EVENTS_ALL, keys.EVENTS_TIME, keys.OUTBOX)


@dataclass(frozen=True)
class Recorded:
    """The outcome of recording a batch: a relay id per input event, and the new ones."""

    ids: list[int]
    new_ids: list[int]


@dataclass(frozen=True)
class EventPage:
    """Recorded events as stored JSON, newest first, and how many the index holds."""

    documents: list[str]
    total: int


def record(
    client: Redis,
    *,
    events: Sequence[Mapping[str, Any]],
    source: str,
    dedupe_ttl_ms: int = DEFAULT_RETENTION_MS,
) -> Recorded:
    """Record valid Unleash events (see relay.unleash) atomically, deduped by producer id."""
    if not events:
        return Recorded(ids=[], new_ids=[])
    now_ms = int(time.time() * 1000)
    now_text = now_rfc3339()
    args: list[str | bytes | int] = [keys.event(""), dedupe_ttl_ms, now_ms]
    args.extend(_item(event, source=source, now_text=now_text) for event in events)
    with translate_errors():
        flat: list[int] = event_scripts.run_script(
            client, event_scripts.RECORD, event_scripts.RECORD_SHA, 4, *_SCRIPT_KEYS, *args
        )
    ids = [int(value) for value in flat[0::2]]
    return Recorded(ids=ids, new_ids=[i for i, new in zip(ids, flat[1::2], strict=True) if new])


def record_events(
    client: Redis,
    *,
    events: Sequence[Mapping[str, Any]],
    source: str,
    dedupe_ttl_ms: int = DEFAULT_RETENTION_MS,
) -> list[int]:
    """Record events in one transaction; the relay id of each (the first one for a re-send)."""
    return record(client, events=events, source=source, dedupe_ttl_ms=dedupe_ttl_ms).ids


def _item(event: Mapping[str, Any], *, source: str, now_text: str) -> bytes:
    """One event as the record script reads it (see relay/store/event_scripts.py)."""
    document = dict(event)
    producer_id = document.pop("id", None)
    document.pop("producerId", None)
    if document.get("createdAt") is None:
        document["createdAt"] = now_text
    if producer_id is not None:
        document["producerId"] = producer_id
    document["source"] = source
    dedupe = keys.dedupe(source, str(producer_id)) if producer_id is not None else ""
    parts = [key.encode() for key in (dedupe, *_indexes(document))]
    lengths = " ".join(str(len(part)) for part in parts)
    head = f"{rfc3339_ms(document['createdAt'])} {lengths} ".encode()
    # the relay id is only known inside the script, which writes `{"id":N,` before this
    return head + b"".join(parts) + _DOCUMENT.dump_json(document)[1:]


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _indexes(document: Mapping[str, Any]) -> tuple[str, str, str]:
    project, feature = _text(document.get("project")), _text(document.get("featureName"))
    environment = _text(document.get("environment"))
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
    documents = get_event_documents(client, ids=ids_of(members))
    return EventPage(documents=[d for d in documents if d is not None], total=int(total))


def event_ids_between(client: Redis, *, start_ms: int, end_ms: int) -> list[int]:
    """Ids of events with start_ms <= createdAt <= end_ms, by createdAt ascending."""
    with translate_errors():
        members = client.zrangebyscore(keys.EVENTS_TIME, start_ms, end_ms)
    return ids_of(members)


def outbox_older_than(client: Redis, *, age_ms: int, limit: int | None = None) -> list[int]:
    """Events put in the fan-out outbox at least `age_ms` ago and still there, oldest first."""
    cutoff = int(time.time() * 1000) - age_ms
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
            client.zrem(keys.OUTBOX, *members)


def ids_of(members: Iterable[Any]) -> list[int]:
    """Event ids from the members of an index."""
    return [int(member) for member in members]
