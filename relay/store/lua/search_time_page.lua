-- One page of recorded events newest first within a createdAt window, from the time index
-- alone (read-only; relay/store/event_search.py): ranks find the page in O(log n), then the
-- whole score groups at its edges are read so equal times come in relay id order.
--
-- KEYS: 1 the time index (score = createdAt ms, member = relay id)
-- ARGV: 1 lowest score ('-inf' or ms), 2 highest score ('+inf' or ms, inclusive),
--       3 offset, 4 limit
-- Returns {events in the window, then the page's relay ids, newest first}

local index, low, high = KEYS[1], ARGV[1], ARGV[2]
local offset, limit = tonumber(ARGV[3]), tonumber(ARGV[4])
local total = redis.call('ZCOUNT', index, low, high)
if offset >= total or limit <= 0 then return {total} end

local above = 0
if high ~= '+inf' then above = redis.call('ZCOUNT', index, '(' .. high, '+inf') end
local first = above + offset
local last = math.min(first + limit, above + total) - 1
local got = redis.call('ZREVRANGE', index, first, last, 'WITHSCORES')
local top, bottom = got[2], got[#got]

-- from the first entry of the top score group to the last of the bottom one, in order
local stretch = ordered_group(redis.call('ZRANGEBYSCORE', index, top, top))
if bottom ~= top then
  local inner_first, inner_last = 1, #got - 1
  while inner_first <= #got and got[inner_first + 1] == top do inner_first = inner_first + 2 end
  while inner_last >= 1 and got[inner_last + 1] == bottom do inner_last = inner_last - 2 end
  append_ordered(stretch, got, inner_first, inner_last)
  for _, member in ipairs(ordered_group(redis.call('ZRANGEBYSCORE', index, bottom, bottom))) do
    stretch[#stretch + 1] = member
  end
end

local stretch_rank = redis.call('ZCOUNT', index, '(' .. top, '+inf')
local page = {total}
for rank = first, last do page[#page + 1] = stretch[rank - stretch_rank + 1] end
return page
