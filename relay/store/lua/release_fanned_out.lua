-- Releases the ordered heads that waited for earlier events' fan-out (claim.lua): those
-- whose event is at or below the lowest event still in the outbox (all of them when it
-- is empty) are due now (relay/store/deliveries.py). Run after each fan-out and by the pump.
--
-- KEYS: 1 outbox by id, 2 fan-out wait, 3 due
-- ARGV: 1 now ms
-- Returns the ids released (to enqueue)

local low = redis.call('ZRANGE', KEYS[1], 0, 0)[1] or '+inf'
local ids = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', low, 'LIMIT', 0, 1000)
for _, id in ipairs(ids) do
  redis.call('ZREM', KEYS[2], id)
  redis.call('ZADD', KEYS[3], tonumber(ARGV[1]), id)
end
return ids
