-- Makes a delivery pending again with no attempts counted; a delivered one is left alone
-- (relay/store/deliveries.py).
--
-- KEYS: 1 delivery, 2 attempts, 3 due, 4 dead
-- ARGV: 1 id, 2 now ms, 3 due at ms
-- Returns the previous state, or nil when there is no such delivery

local cur = redis.call('HGET', KEYS[1], 'state')
if not cur or cur == 'delivered' then return cur end
redis.call('HSET', KEYS[1], 'state', 'pending', 'attempts', 0, 'updated', ARGV[2],
  'next', ARGV[2], 'reason', '')
redis.call('HDEL', KEYS[1], 'delivered')
redis.call('PERSIST', KEYS[1])
redis.call('PERSIST', KEYS[2])
redis.call('ZREM', KEYS[4], ARGV[1])
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[1])
return cur
