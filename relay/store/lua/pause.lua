-- Pauses a subscription's deliveries until a time (relay/store/subscription_status.py):
-- its receiver answered 429 or 503 with Retry-After. A later end extends the pause, an
-- earlier one leaves it; a deleted subscription's status is not recreated.
--
-- KEYS: 1 status, 2 subscription
-- ARGV: 1 until ms, 2 reason, 3 at ms
-- Returns 2 when a pause began, 1 when the current one grew, else 0

if redis.call('EXISTS', KEYS[2]) == 0 then return 0 end
local current = tonumber(redis.call('HGET', KEYS[1], 'pausedUntil') or 0)
if tonumber(ARGV[1]) <= current then return 0 end
redis.call('HSET', KEYS[1], 'pausedUntil', ARGV[1], 'pausedReason', ARGV[2], 'pausedAt', ARGV[3])
if current <= tonumber(ARGV[3]) then return 2 end
return 1
