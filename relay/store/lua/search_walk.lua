-- Walks the time index newest first from a cursor, keeping the events that are in every
-- required group of indexes (read-only; relay/store/event_search.py).
--
-- It reads by rank without scores (Redis 6.2 formats every score it answers, which costs
-- three times the read) and ends each step at the end of a score group, so equal times
-- never straddle two steps; only a step holding ids of several lengths can have equal
-- times out of relay id order, and only such a step is read again with its scores.
--
-- KEYS: 1 the time index (score = createdAt ms), then the required indexes, group by group
-- ARGV: 1 lowest score ('-inf' or ms), 2 highest score ('+inf' or ms, inclusive),
--       3 cursor ('' at the start, else the createdAt of the last group walked),
--       4 entries to examine at most (whole steps: it may pass it by one step),
--       5 matches to pass over, 6 matches to collect at most, then each required group's
--       key count
-- Returns {next cursor ('' when the window is walked to its end), entries examined,
--   matches, relay id of the last entry examined ('' if none), collected ids...}

local index, low, high, cursor = KEYS[1], ARGV[1], ARGV[2], ARGV[3]
local budget, skip, take = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local sizes = {}
for i = 7, #ARGV do sizes[#sizes + 1] = tonumber(ARGV[i]) end
local STEP = 1000

-- ranks, newest first; counting by score keeps the walk in place while events are recorded
local start = 0
if cursor ~= '' then
  start = redis.call('ZCOUNT', index, cursor, '+inf')
elseif high ~= '+inf' then
  start = redis.call('ZCOUNT', index, '(' .. high, '+inf')
end
local stop = redis.call('ZCOUNT', index, low, '+inf') - 1

local examined, matched, last_id, collected = 0, 0, '', {}
while examined < budget and start <= stop do
  local last = math.min(start + STEP - 1, stop)
  local members = redis.call('ZREVRANGE', index, start, last)
  local bottom = redis.call('ZSCORE', index, members[#members])
  local group_end = redis.call('ZCOUNT', index, bottom, '+inf') - 1
  if group_end > last then
    for _, member in ipairs(redis.call('ZREVRANGE', index, last + 1, group_end)) do
      members[#members + 1] = member
    end
    last = group_end
  end
  local length, mixed = #members[1], false
  for m = 2, #members do
    if #members[m] ~= length then mixed = true; break end
  end
  if mixed then
    local got = redis.call('ZREVRANGE', index, start, last, 'WITHSCORES')
    members = {}
    append_ordered(members, got, 1, #got)
  end
  local keep = {}
  for m = 1, #members do keep[m] = true end
  require_groups(members, keep, 2, sizes)
  for m = 1, #members do
    if keep[m] then
      matched = matched + 1
      if matched > skip and #collected < take then collected[#collected + 1] = members[m] end
    end
  end
  examined = examined + #members
  last_id = members[#members]
  cursor = bottom
  start = last + 1
end

if start > stop then cursor = '' end
local answer = {cursor, examined, matched, last_id}
for _, id in ipairs(collected) do answer[#answer + 1] = id end
return answer
