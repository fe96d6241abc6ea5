-- Stores a new subscription after its limit checks, in one atomic step: concurrent
-- creates never pass a limit (relay/store/subscriptions.py).
--
-- KEYS: 1 subscription, 2 index, 3 version, 4 sequence, 5 entries, 6 entries total,
--       7 status
-- ARGV: 1 document, 2 id, 3 max subscriptions (0 = none), 4 its policy entries,
--       5 max total entries (0 = none), 6 its maxInFlight ('' = the default),
--       7 its maxPerSecond ('' = none): the claims read them from its status
-- Returns {1} stored, {0} too many subscriptions, {-1} the total is not counted yet,
--   {-2, total} past the total budget

local max = tonumber(ARGV[3])
if max > 0 and redis.call('ZCARD', KEYS[2]) >= max then return {0} end
local total = redis.call('GET', KEYS[6])
if not total then return {-1} end
local entries, budget = tonumber(ARGV[4]), tonumber(ARGV[5])
if entries > 0 and budget > 0 and tonumber(total) + entries > budget then
  return {-2, tonumber(total)}
end
local sequence = redis.call('INCR', KEYS[4])
redis.call('SET', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[2], sequence, ARGV[2])
redis.call('INCR', KEYS[3])
redis.call('HSET', KEYS[5], ARGV[2], entries)
redis.call('INCRBY', KEYS[6], entries)
if ARGV[6] ~= '' then redis.call('HSET', KEYS[7], 'maxInFlight', ARGV[6]) end
if ARGV[7] ~= '' then redis.call('HSET', KEYS[7], 'maxPerSecond', ARGV[7]) end
return {1}
