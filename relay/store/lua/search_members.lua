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
  local ids, times = {}, {}
  for start = 1, #members, CHUNK do
    local stop = math.min(start + CHUNK - 1, #members)
    local scores = redis.call('ZMSCORE', KEYS[1], unpack(members, start, stop))
    for m = start, stop do
      local time = tonumber(scores[m - start + 1])
      if time and time >= low and time <= high then
        ids[#ids + 1] = members[m]
        times[#ids] = time
      end
    end
  end
  local keep = {}
  for m = 1, #ids do keep[m] = true end
  require_groups(ids, keep, 2 + sources, sizes)
  local kept_ids, kept_times, sorted = {}, {}, true
  for m = 1, #ids do
    if keep[m] then
      local k = #kept_ids + 1
      kept_ids[k], kept_times[k] = ids[m], times[m]
      if k > 1 and times[m] < kept_times[k - 1] then sorted = false end
    end
  end
  if not sorted then
    -- keys that order as (createdAt, id) byte by byte: ms and ids are below 10^16
    local keys = {}
    for m = 1, #kept_ids do keys[m] = string.format('%016d%016d', kept_times[m], kept_ids[m]) end
    table.sort(keys)
    for m = 1, #keys do
      kept_times[m] = tonumber(string.sub(keys[m], 1, 16))
      kept_ids[m] = string.match(keys[m], '^' .. string.rep('%d', 16) .. '0*(%d+)$')
    end
  end
  local out_ids, out_times = {}, {}
  for m = #kept_ids, 1, -1 do
    local k = #out_ids + 1
    out_ids[k], out_times[k] = kept_ids[m], kept_times[m]
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
local answer, at = {}, {}
for l = 1, #lists do at[l] = 1 end
while true do
  local best
  for l = 1, #lists do
    local i = at[l]
    local id = lists[l][1][i]
    if id then
      if not best then
        best = l
      else
        local time, best_time = lists[l][2][i], lists[best][2][at[best]]
        local best_id = lists[best][1][at[best]]
        if time > best_time or (time == best_time and tonumber(id) > tonumber(best_id)) then
          best = l
        end
      end
    end
  end
  if not best then break end
  answer[#answer + 1] = lists[best][1][at[best]]
  at[best] = at[best] + 1
end
return answer
