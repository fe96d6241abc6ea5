-- Shared by the event search scripts (relay/store/event_search.py): newest-first order over
-- indexes scored by createdAt ms whose members are relay ids. Redis orders members of equal
-- score by their bytes, so '999' comes after '1000' going down; Unleash orders equal times
-- by id, descending. These functions put each run of equal scores in that order.

-- relay ids of equal createdAt, newest first: longer ids are larger ids
local function by_id_desc(a, b)
  if #a ~= #b then return #a > #b end
  return a > b
end

-- members of one score, in any order, as a new list in newest-first order
local function ordered_group(members)
  local out = {}
  for i = 1, #members do out[i] = members[i] end
  table.sort(out, by_id_desc)
  return out
end

-- append pairs got[first..last] (member, score, ... as WITHSCORES answers them, scores
-- descending, equal scores by bytes descending) to `out` in newest-first order
local function append_ordered(out, got, first, last)
  local i = first
  while i <= last do
    local score = got[i + 1]
    local j, mixed = i, false
    while j + 2 <= last and got[j + 3] == score do
      j = j + 2
      if #got[j] ~= #got[i] then mixed = true end
    end
    if mixed then
      local run = {}
      for k = i, j, 2 do run[#run + 1] = got[k] end
      table.sort(run, by_id_desc)
      for k = 1, #run do out[#out + 1] = run[k] end
    else
      for k = i, j, 2 do out[#out + 1] = got[k] end
    end
    i = j + 2
  end
end

-- whether `member` is in each required group of indexes (in any index of a group): marks
-- `keep[i]` false for members[i] that are not; KEYS[first..] hold the groups, `sizes` their
-- key counts
local CHUNK = 1000 -- arguments per command: unpack() has a stack limit
local function require_groups(members, keep, first, sizes)
  local k = first
  for _, size in ipairs(sizes) do
    local found = {}
    for g = k, k + size - 1 do
      for start = 1, #members, CHUNK do
        local stop = math.min(start + CHUNK - 1, #members)
        local scores = redis.call('ZMSCORE', KEYS[g], unpack(members, start, stop))
        for m = start, stop do
          if scores[m - start + 1] then found[m] = true end
        end
      end
    end
    for m = 1, #members do
      if not found[m] then keep[m] = false end
    end
    k = k + size
  end
end
