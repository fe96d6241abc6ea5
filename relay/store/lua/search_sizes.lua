-- The length of stored events' JSON, so the event search reads them in batches of bounded
-- size (read-only; relay/store/event_search.py). One call with short ids rather than a
-- pipeline of STRLEN: redis-py spends more packing and parsing a command than Redis
-- spends answering it.
--
-- KEYS: none
-- ARGV: 1 event key prefix, then relay ids
-- Returns each event's JSON length in bytes, 0 for an event that is gone

local prefix, sizes = ARGV[1], {}
for i = 2, #ARGV do sizes[i - 1] = redis.call('STRLEN', prefix .. ARGV[i]) end
return sizes
