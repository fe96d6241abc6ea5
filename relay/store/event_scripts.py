"""The Lua script behind relay/store/events.py: requests' events recorded atomically.

RECORD checks each request's token, then dedupes, numbers, stores, indexes and puts in
the outbox every event of the requests it allows, in one script: an acknowledged event is
either fully recorded or not at all, and two requests racing with the same producer id
cannot both record it. One call can carry several requests (the API's group commit,
relay/api/routes/ingest.py): each keeps its own outcome, and Redis pays a script call's fixed
cost once for all of them. It batches its writes (one MGET, MSET and ZADD per key for the
whole call) because Redis spends most of a script's time dispatching commands.

Each event travels as six plain arguments, so the script does no string parsing: the
document is put together as `{"id":N,` + the event's JSON fields + `,"source":S}`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any, Final

from redis.exceptions import NoScriptError

from relay.store.client import Redis

# KEYS: event sequence, all, time, outbox. ARGV: event key prefix, dedupe key prefix, token
# key prefix, dedupe TTL ms, now ms, " <allowed roles> ", then per request: its event count,
# its token's hash key ('' = caller already checked), its source ('' = the token's id) and
# that source as JSON, then 6 arguments per event: createdAt ms, producer id ('' = none),
# project, feature and flag index keys ('' = none), the event JSON without its braces
# (and without `id` and `source`). -> per request: {0, 'unauthorized'}, {0, 'forbidden',
# role} or {1, token id ('' if not checked here), then relay id, 1 if recorded now else 0,
# per event in order}.
RECORD: Final = """
local event_prefix, dedupe_prefix, token_prefix = ARGV[1], ARGV[2], ARGV[3]
local ttl, now, allowed = ARGV[4], ARGV[5], ARGV[6]
local CHUNK = 1000 -- arguments per command: unpack() has a stack limit
local FIELDS = 6

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

-- pass 1: the callers' tokens; the events of the requests they allow (parallel arrays)
local results, owner, argn, dedupe, source_of = {}, {}, {}, {}, {}
local lookups, n, i, r = {}, 0, 7, 0
while i <= #ARGV do
  r = r + 1
  local count, token_key = tonumber(ARGV[i]), ARGV[i + 1]
  local source, source_json = ARGV[i + 2], ARGV[i + 3]
  local token_id = ''
  if token_key ~= '' then
    token_id = redis.call('GET', token_key)
    local role = token_id and redis.call('HGET', token_prefix .. token_id, 'role')
    if not role then
      results[r] = {0, 'unauthorized'}
    elseif not string.find(allowed, ' ' .. role .. ' ', 1, true) then
      results[r] = {0, 'forbidden', role}
    elseif source == '' then
      source, source_json = token_id, '"' .. token_id .. '"'
    end
  end
  i = i + 4
  if not results[r] then
    results[r] = {1, token_id}
    for base = i, i + (count - 1) * FIELDS, FIELDS do
      n = n + 1
      owner[n], argn[n], source_of[n] = r, base, source_json
      local producer = ARGV[base + 1]
      if producer ~= '' then
        local key = dedupe_prefix .. source .. ':' .. producer
        dedupe[n] = key
        lookups[#lookups + 1] = key
      else
        dedupe[n] = false
      end
    end
  end
  i = i + count * FIELDS
end

local known = {}
for start = 1, #lookups, CHUNK do
  local stop = math.min(start + CHUNK - 1, #lookups)
  local values = redis.call('MGET', unpack(lookups, start, stop))
  for k = 1, stop - start + 1 do known[lookups[start + k - 1]] = values[k] end
end

-- a producer id seen before, or twice in this call, keeps its first relay id
local ids, new, twin, first, fresh = {}, {}, {}, {}, {}
for k = 1, n do
  local key = dedupe[k]
  if key and known[key] then
    ids[k] = tonumber(known[key])
  elseif key and first[key] then
    twin[k] = first[key] -- numbered below, with the fresh events
  else
    fresh[#fresh + 1] = k
    new[k] = 1
    if key then first[key] = k end
  end
end

if #fresh > 0 then
  local last = redis.call('INCRBY', KEYS[1], #fresh)
  -- ids are made strings once: Lua formats a number again for every command it is passed to
  local docs, all, times, outbox, groups = {}, {}, {}, {}, {}
  local d, z = 0, 0
  local function index(key, score, id)
    local group = groups[key]
    if not group then group = {}; groups[key] = group end
    local g = #group
    group[g + 1] = score
    group[g + 2] = id
  end
  local base_id = last - #fresh
  for f, k in ipairs(fresh) do
    local id = tostring(base_id + f)
    local a = argn[k]
    local created = ARGV[a]
    ids[k] = id
    docs[d + 1] = event_prefix .. id
    docs[d + 2] = '{"id":' .. id .. ',' .. ARGV[a + 5] .. ',"source":' .. source_of[k] .. '}'
    d = d + 2
    all[z + 1] = id; all[z + 2] = id
    times[z + 1] = created; times[z + 2] = id
    outbox[z + 1] = now; outbox[z + 2] = id
    z = z + 2
    if ARGV[a + 2] ~= '' then index(ARGV[a + 2], id, id) end
    if ARGV[a + 3] ~= '' then index(ARGV[a + 3], id, id) end
    if ARGV[a + 4] ~= '' then index(ARGV[a + 4], created, id) end
    if dedupe[k] then redis.call('SET', dedupe[k], id, 'PX', ttl) end
  end
  chunked('MSET', nil, docs)
  chunked('ZADD', KEYS[2], all)
  chunked('ZADD', KEYS[3], times)
  chunked('ZADD', KEYS[4], outbox)
  for key, values in pairs(groups) do chunked('ZADD', key, values) end
end

for k = 1, n do
  local id = ids[k] or ids[twin[k]]
  local result = results[owner[k]]
  result[#result + 1] = id
  result[#result + 1] = new[k] or 0
end
return results
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
