"""Bulk reads over the flag-event indexes, shaped so only what a query needs crosses the wire.

Two small Lua scripts (read-only commands only) run in Redis: the relay id span of a time
window, and a substring check over stored events. Each call is bounded (one window, or
a chunk of events), so none holds Redis for long; the rest are plain pipelines.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Final

from relay.store import keys
from relay.store.client import Redis, translate_errors

__all__ = ["documents_mentioning", "documents_with", "flag_positions_in_window"]

ENTRY_CHUNK: Final = 5000  # events checked per script call: a few ms of Redis time

# KEYS: indexes. ARGV: start, stop. Returns {smallest, largest} relay id in the window, or {}.
_ID_SPAN: Final = """
local first_id, last_id = math.huge, -math.huge
for i = 1, #KEYS do
  for _, member in ipairs(redis.call('ZRANGEBYSCORE', KEYS[i], ARGV[1], ARGV[2])) do
    local id = tonumber(member)
    if id < first_id then first_id = id end
    if id > last_id then last_id = id end
  end
end
if first_id > last_id then return {} end
return {first_id, last_id}
"""

# ARGV: event key prefix, needle, then event ids. Returns the ids whose JSON has the needle.
_DOCUMENTS_MENTIONING: Final = """
local out = {}
for i = 3, #ARGV do
  local doc = redis.call('GET', ARGV[1] .. ARGV[i])
  if doc and string.find(doc, ARGV[2], 1, true) then out[#out + 1] = ARGV[i] end
end
return out
"""


def flag_positions_in_window(
    client: Redis,
    *,
    index: Sequence[str],
    flags: Sequence[str],
    start_ms: int | None,
    stop_ms: int | None,
) -> list[tuple[str, int, str]]:
    """(member, createdAt ms, flag) of the flags' events in the indexes and the window.

    No `start_ms`/`stop_ms` means all time. A feature index is scored by relay id, so
    only its ids between the smallest and the largest id in the window can be in it:
    events are recorded roughly in time order, which keeps that span close to the window
    (out-of-order backfills widen it, never wrongly). ZMSCORE then looks those events up
    in each index, O(1) each: ZINTER would build and sort a result set per pair and costs
    several times more. Plain pipelines, so other clients' commands interleave.
    """
    lo, hi = -math.inf, math.inf
    span: list[int | str] = ["-inf", "+inf"]
    with translate_errors():
        if start_ms is not None and stop_ms is not None:
            lo, hi = start_ms, stop_ms
            span = client.register_script(_ID_SPAN)(keys=list(index), args=[start_ms, stop_ms])
            if not span:
                return []
        pipe = client.pipeline(transaction=False)
        for flag in flags:
            pipe.zrangebyscore(keys.events_by_feature(flag), span[0], span[1])
        members: list[list[str]] = pipe.execute()
        asked = [
            (flag, ids, key)
            for flag, ids in zip(flags, members, strict=True)
            if ids
            for key in index
        ]
        pipe = client.pipeline(transaction=False)
        for _, ids, key in asked:
            pipe.zmscore(key, ids)
        scores: list[list[float | None]] = pipe.execute()
    return [
        (member, int(score), flag)
        for (flag, ids, _), found in zip(asked, scores, strict=True)
        for member, score in zip(ids, found, strict=True)
        if score is not None and lo <= score <= hi
    ]


def documents_mentioning(client: Redis, *, index: str, needle: str) -> list[int]:
    """Ids of the events in `index` whose stored JSON contains `needle`."""
    with translate_errors():
        members: list[str] = client.zrange(index, 0, -1)  # type: ignore[assignment]
    return documents_with(client, ids=members, needle=needle)


def documents_with(client: Redis, *, ids: Sequence[str], needle: str) -> list[int]:
    """Those of the events `ids` whose stored JSON contains `needle` (checked in Redis)."""
    found: list[int] = []
    with translate_errors():
        script = client.register_script(_DOCUMENTS_MENTIONING)
        for at in range(0, len(ids), ENTRY_CHUNK):
            chunk = ids[at : at + ENTRY_CHUNK]
            matched = script(keys=[], args=[keys.event(""), needle, *chunk])
            found.extend(int(member) for member in matched)
    return found
