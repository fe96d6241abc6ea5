-- Counts a failed attempt in a subscription's status and keeps it among the last errors,
-- unless the subscription is gone (relay/store/subscription_status.py).
--
-- KEYS: 1 subscription, 2 status, 3 errors
-- ARGV: 1 at ms, 2 error entry JSON, 3 errors kept
-- Returns 2 when counted and it began a run of failures, 1 when counted, 0 when the
-- subscription is gone

if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HINCRBY', KEYS[2], 'errorCount', 1)
local last = tonumber(redis.call('HGET', KEYS[2], 'lastError')) or 0
if tonumber(ARGV[1]) > last then redis.call('HSET', KEYS[2], 'lastError', ARGV[1]) end
local began = redis.call('HSETNX', KEYS[2], 'failingSince', ARGV[1])
redis.call('LPUSH', KEYS[3], ARGV[2])
redis.call('LTRIM', KEYS[3], 0, tonumber(ARGV[3]) - 1)
return 1 + began
