-- Compare-and-delete: never releases a lock another owner took after ours expired
-- (relay/store/locks.py).
--
-- KEYS: 1 lock
-- ARGV: 1 owner token
-- Returns 1 when released, 0 when the lock is not ours

if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
