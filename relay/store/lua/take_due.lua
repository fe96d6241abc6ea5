-- Deliveries due now; each is due again at requeue_at unless a worker claims it
-- (relay/store/deliveries.py).
--
-- KEYS: 1 due
-- ARGV: 1 now ms, 2 requeue at ms, 3 limit
-- Returns the ids due now

local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
for _, id in ipairs(ids) do redis.call('ZADD', KEYS[1], ARGV[2], id) end
return ids
