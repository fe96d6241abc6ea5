-- The length of stored events' JSON, so the event search reads them in batches of bounded
-- size (read-only; relay/store/event_search.py). One call with the ids in one argument
-- rather than a pipeline of STRLEN: redis-py spends more packing a command or an argument
-- than Redis spends answering it.
--
-- KEYS: none
-- ARGV: 1 event key prefix, 2 relay ids separated by spaces
-- Returns each event's JSON length in bytes, 0 for an event that is gone

local prefix, sizes = ARGV[1], {}
for id in string.gmatch(ARGV[2], '%d+') do
  sizes[#sizes + 1] = redis.call('STRLEN', prefix .. id)
end
return sizes
