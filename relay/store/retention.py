"""Retention: events older than the retention window leave every index at once.

Dedupe keys are not touched here: they carry a TTL of the retention window from the
moment they were written, so a producer re-sending an old event is still recognised.
"""

from __future__ import annotations

import json
from typing import Final

from relay.store import keys
from relay.store.client import Redis, translate_errors
from relay.store.events import get_event_documents, ids_of, index_keys

BATCH: Final = 500


def trim_events(client: Redis, *, older_than_ms: int, batch: int = BATCH) -> int:
    """Delete events whose `createdAt` is before `older_than_ms`, with their index entries.

    Returns how many were deleted. Each batch is one transaction, so no index ever
    points at an event that is gone.
    """
    trimmed = 0
    while True:
        count = _trim_batch(client, older_than_ms=older_than_ms, batch=batch)
        trimmed += count
        if count < batch:
            return trimmed


def _trim_batch(client: Redis, *, older_than_ms: int, batch: int) -> int:
    with translate_errors():
        members = client.zrangebyscore(
            keys.EVENTS_TIME, "-inf", f"({older_than_ms}", start=0, num=batch
        )
    ids = ids_of(members)
    if not ids:
        return 0
    documents = get_event_documents(client, ids=ids)
    by_index: dict[str, list[int]] = {}
    for event_id, text in zip(ids, documents, strict=True):
        if text is not None:
            for key in index_keys(json.loads(text)):
                by_index.setdefault(key, []).append(event_id)
    with translate_errors():
        pipe = client.pipeline(transaction=True)
        pipe.delete(*[keys.event(i) for i in ids])
        for key in (keys.EVENTS_ALL, keys.EVENTS_TIME, keys.OUTBOX, keys.OUTBOX_IDS):
            pipe.zrem(key, *ids)
        for key, members_of_key in by_index.items():
            pipe.zrem(key, *members_of_key)
        pipe.execute()
    return len(ids)
