-- Which stored events' JSON contains a needle (read-only; relay/store/flag_events.py).
--
-- KEYS: none
-- ARGV: 1 event key prefix, 2 needle, then event ids
-- Returns the ids whose JSON has the needle

local out = {}
for i = 3, #ARGV do
  local doc = redis.call('GET', ARGV[1] .. ARGV[i])
  if doc and string.find(doc, ARGV[2], 1, true) then out[#out + 1] = ARGV[i] end
end
return out
