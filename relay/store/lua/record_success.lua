-- Counts a delivered attempt in a subscription's status, unless the subscription is gone:
-- a worker finishing after a deletion must not recreate the status
-- (relay/store/subscription_status.py).
--
-- KEYS: 1 subscription, 2 status
-- ARGV: 1 at ms
-- Returns 2 when counted and it ended a run of failures, 1 when counted, 0 when the
-- subscription is gone

if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HINCRBY', KEYS[2], 'successCount', 1)
local last = tonumber(redis.call('HGET', KEYS[2], 'lastSuccess')) or 0
if tonumber(ARGV[1]) > last then redis.call('HSET', KEYS[2], 'lastSuccess', ARGV[1]) end
return 1 + redis.call('HDEL', KEYS[2], 'failingSince')
