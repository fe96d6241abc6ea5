-- Deletes a subscription with its status; only a real deletion bumps the version, in the
-- same atomic step (relay/store/subscriptions.py).
--
-- KEYS: 1 subscription, 2 status, 3 errors, 4 index, 5 version, 6 entries, 7 entries total,
--       8 its ordering keys, 9 due
-- ARGV: 1 id, 2 now ms, 3 text the document must hold to be deleted ('' for any: a
--       `relay listen` deletes its subscription only while it still carries the mark)
-- Deliveries held back by an ordering key are made due (their claims skip them: deleted).
-- Returns 1 when deleted, 0 when there was none (or it did not hold ARGV[3])

if ARGV[3] ~= '' then
  local document = redis.call('GET', KEYS[1])
  if not document or not string.find(document, ARGV[3], 1, true) then return 0 end
end
if redis.call('DEL', KEYS[1]) == 0 then return 0 end
for _, order in ipairs(redis.call('SMEMBERS', KEYS[8])) do
  for _, id in ipairs(redis.call('ZRANGE', order, 0, -1)) do
    redis.call('ZADD', KEYS[9], tonumber(ARGV[2]), id)
  end
  redis.call('DEL', order)
end
redis.call('DEL', KEYS[8])
redis.call('DEL', KEYS[2], KEYS[3])
redis.call('ZREM', KEYS[4], ARGV[1])
redis.call('INCR', KEYS[5])
local counted = redis.call('HGET', KEYS[6], ARGV[1])
if counted then
  redis.call('HDEL', KEYS[6], ARGV[1])
  if redis.call('EXISTS', KEYS[7]) == 1 then redis.call('DECRBY', KEYS[7], counted) end
end
return 1
