-- The events of a few indexes (or of given relay ids) within a createdAt window and in
-- every required group of indexes, newest first (read-only; relay/store/event_search.py).
-- For small sources: each member's createdAt is read. A source's members come in relay id
-- order, which is almost always createdAt order too; a source that is not is sorted.
--
-- KEYS: 1 the time index (score = createdAt ms), then the source indexes (disjoint), then
--       the required indexes, group by group
-- ARGV: 1 lowest ms ('-inf' or ms), 2 highest ms ('+inf' or ms, inclusive), 3 number of
--       source indexes, 4 number of given relay ids, those ids (distinct, ascending), then
--       each required group's key count
-- Returns the matching relay ids, newest first

local low = ARGV[1] == '-inf' and -math.huge or tonumber(ARGV[1])
local high = ARGV[2] == '+inf' and math.huge or tonumber(ARGV[2])
local sources, given = tonumber(ARGV[3]), tonumber(ARGV[4])
local sizes = {}
for i = 5 + given, #ARGV do sizes[#sizes + 1] = tonumber(ARGV[i]) end

-- one source's members (ascending ids) in the window and the required groups, as
-- {ids, times} newest first
local function newest_first(members)
  local ids, times, n = {}, {}, 0
  for start = 1, #members, CHUNK do
    local stop = math.min(start + CHUNK - 1, #members)
    local scores = redis.call('ZMSCORE', KEYS[1], unpack(members, start, stop))
    for m = start, stop do
      local time = tonumber(scores[m - start + 1])
      if time and time >= low and time <= high then
        n = n + 1
        ids[n], times[n] = members[m], time
      end
    end
  end
  if #sizes > 0 then
    local keep = {}
    for m = 1, n do keep[m] = true end
    require_groups(ids, keep, 2 + sources, sizes)
    local k = 0
    for m = 1, n do
      if keep[m] then
        k = k + 1
        ids[k], times[k] = ids[m], times[m]
      end
    end
    for m = k + 1, n do ids[m], times[m] = nil, nil end
    n = k
  end
  local sorted = true
  for m = 2, n do
    if times[m] < times[m - 1] then sorted = false; break end
  end
  if not sorted then
    -- keys that order as (createdAt, id) byte by byte: ms and ids are below 10^16
    local keys = {}
    for m = 1, n do keys[m] = string.format('%016d%016d', times[m], ids[m]) end
    table.sort(keys)
    local id_digits = '^' .. string.rep('%d', 16) .. '0*(%d+)$'
    for m = 1, n do
      times[m] = tonumber(string.sub(keys[m], 1, 16))
      ids[m] = string.match(keys[m], id_digits)
    end
  end
  local out_ids, out_times = {}, {}
  for m = n, 1, -1 do
    out_ids[n - m + 1], out_times[n - m + 1] = ids[m], times[m]
  end
  return {out_ids, out_times}
end

local lists = {}
for k = 2, 1 + sources do lists[#lists + 1] = newest_first(redis.call('ZRANGE', KEYS[k], 0, -1)) end
if given > 0 then
  local ids = {}
  for i = 5, 4 + given do ids[#ids + 1] = ARGV[i] end
  lists[#lists + 1] = newest_first(ids)
end

-- merge the lists, newest first (createdAt, then id, descending)
local merged = lists[1] and lists[1][1] or {}
if #lists > 1 then
  merged = {}
  local at = {}
  for l = 1, #lists do at[l] = 1 end
  while true do
    local best, best_time, best_id
    for l = 1, #lists do
      local id = lists[l][1][at[l]]
      if id then
        local time = lists[l][2][at[l]]
        if not best or time > best_time
            or (time == best_time and tonumber(id) > tonumber(best_id)) then
          best, best_time, best_id = l, time, id
        end
      end
    end
    if not best then break end
    merged[#merged + 1] = best_id
    at[best] = at[best] + 1
  end
end
return merged
