-- Records requests' events atomically (relay/store/events.py): checks each request's token,
-- then dedupes, numbers, stores, indexes and puts in the fan-out outbox every event of the
-- requests it allows. An acknowledged event is fully recorded or not at all; two requests
-- racing with the same producer id cannot both record it. Writes are batched (one MGET,
-- MSET and ZADD per key for the whole call): Redis spends most of a script's time
-- dispatching commands. The document is `{"id":N,` + the event's fields + `,"source":S}`,
-- so the script parses no JSON.
--
-- KEYS: 1 event sequence, 2 all events index, 3 time index, 4 outbox, 5 outbox by id
-- ARGV: 1 event key prefix, 2 dedupe key prefix, 3 token key prefix, 4 dedupe TTL ms,
--       5 now ms, 6 " <allowed roles> " (space-separated, padded),
--       then per request: its event count, its token's hash key ('' = the caller checked
--       it already), its source ('' = the token's id), that source as JSON,
--       then 6 per event: createdAt ms, producer id ('' = none), project index key,
--       feature index key, flag index key ('' = none for each), the event's JSON fields
--       without braces, `id` and `source`
-- Returns per request: {0, 'unauthorized'}, {0, 'forbidden', role} or {1, token id ('' if
--   not checked here), then relay id, 1 if recorded now else 0, per event in order}

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
  chunked('ZADD', KEYS[5], all)
  for key, values in pairs(groups) do chunked('ZADD', key, values) end
end

for k = 1, n do
  local id = ids[k] or ids[twin[k]]
  local result = results[owner[k]]
  result[#result + 1] = id
  result[#result + 1] = new[k] or 0
end
return results
