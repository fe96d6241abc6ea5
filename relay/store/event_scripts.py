"""The Lua script behind relay/store/events.py: a batch of events recorded atomically.

RECORD dedupes, numbers, stores, indexes and puts in the outbox every event of a batch in
one script, so an acknowledged event is either fully recorded or not at all, and two
requests racing with the same producer id cannot both record it. It batches its writes
(one MGET, MSET and ZADD per key for the whole batch) because Redis spends most of a
script's time dispatching commands, not running them.

Each event is one argument (packing arguments is most of the client's cost):
`"<createdAt ms> <len> <len> <len> <len> "` then the dedupe, project, feature and flag
index keys ('' = none; lengths in bytes), then the event JSON after `{"id":N,`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any, Final

from redis.exceptions import NoScriptError

from relay.store.client import Redis

# KEYS: event sequence, all, time, outbox. ARGV: event key prefix, dedupe TTL ms, now ms,
# then one item per event. -> flat [relay id, 1 if recorded now else 0] per event, in order.
RECORD: Final = """
local prefix, ttl, now = ARGV[1], ARGV[2], ARGV[3]
local CHUNK = 1000 -- arguments per command: unpack() has a stack limit

local function chunked(command, key, values)
  for start = 1, #values, CHUNK do
    local stop = math.min(start + CHUNK - 1, #values)
    if key then
      redis.call(command, key, unpack(values, start, stop))
    else
      redis.call(command, unpack(values, start, stop))
    end
  end
end

local events, lookups = {}, {}
for i = 4, #ARGV do
  local item = ARGV[i]
  local created, l1, l2, l3, l4, pos = string.match(item, '^(%-?%d+) (%d+) (%d+) (%d+) (%d+) ()')
  local fields = {}
  for _, len in ipairs({tonumber(l1), tonumber(l2), tonumber(l3), tonumber(l4)}) do
    fields[#fields + 1] = string.sub(item, pos, pos + len - 1)
    pos = pos + len
  end
  local event = {created = created, dedupe = fields[1], project = fields[2],
    feature = fields[3], flag = fields[4], body = string.sub(item, pos)}
  events[#events + 1] = event
  if event.dedupe ~= '' then lookups[#lookups + 1] = event.dedupe end
end

local known = {}
for start = 1, #lookups, CHUNK do
  local stop = math.min(start + CHUNK - 1, #lookups)
  local values = redis.call('MGET', unpack(lookups, start, stop))
  for k = 1, stop - start + 1 do known[lookups[start + k - 1]] = values[k] end
end

-- a producer id seen before, or twice in this batch, keeps its first relay id
local fresh, first = {}, {}
for _, event in ipairs(events) do
  local dedupe = event.dedupe
  if dedupe ~= '' and known[dedupe] then
    event.id = tonumber(known[dedupe])
  elseif dedupe ~= '' and first[dedupe] then
    event.twin = first[dedupe]
  else
    fresh[#fresh + 1] = event
    event.new = 1
    if dedupe ~= '' then first[dedupe] = event end
  end
end

if #fresh > 0 then
  local last = redis.call('INCRBY', KEYS[1], #fresh)
  local docs, all, times, outbox, groups = {}, {}, {}, {}, {}
  local function index(key, score, id)
    if key == '' then return end
    local group = groups[key]
    if not group then group = {}; groups[key] = group end
    group[#group + 1] = score
    group[#group + 1] = id
  end
  for k, event in ipairs(fresh) do
    local id = last - #fresh + k
    event.id = id
    docs[#docs + 1] = prefix .. id
    docs[#docs + 1] = '{"id":' .. id .. ',' .. event.body
    all[#all + 1] = id; all[#all + 1] = id
    times[#times + 1] = event.created; times[#times + 1] = id
    outbox[#outbox + 1] = now; outbox[#outbox + 1] = id
    index(event.project, id, id)
    index(event.feature, id, id)
    index(event.flag, event.created, id)
    if event.dedupe ~= '' then redis.call('SET', event.dedupe, id, 'PX', ttl) end
  end
  chunked('MSET', nil, docs)
  chunked('ZADD', KEYS[2], all)
  chunked('ZADD', KEYS[3], times)
  chunked('ZADD', KEYS[4], outbox)
  for key, values in pairs(groups) do chunked('ZADD', key, values) end
end

local out = {}
for _, event in ipairs(events) do
  out[#out + 1] = event.id or event.twin.id
  out[#out + 1] = event.new or 0
end
return out
"""
RECORD_SHA: Final = hashlib.sha1(RECORD.encode()).hexdigest()


def sha_of(script: str) -> str:
    """The SHA1 Redis knows a script by (EVALSHA)."""
    return hashlib.sha1(script.encode()).hexdigest()


def run_script(client: Redis, script: str, sha: str, numkeys: int, *args: Any) -> Any:
    """EVALSHA straight through `execute_command`, loading the script when Redis lacks it.

    redis-py's Script object wraps each call in layers (argument tuples, a deprecation
    decorator, a pipeline check) that cost a visible share of a small ingest request.
    """
    execute: Callable[..., Any] = client.execute_command
    try:
        return execute("EVALSHA", sha, numkeys, *args)
    except NoScriptError:
        client.script_load(script)
        return execute("EVALSHA", sha, numkeys, *args)
