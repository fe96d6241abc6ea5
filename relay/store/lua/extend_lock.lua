-- Compare-and-extend: never extends a lock another owner took after ours expired
-- (relay/store/locks.py).
--
-- KEYS: 1 lock
-- ARGV: 1 owner token, 2 ttl ms
-- Returns 1 when extended, 0 when the lock is not ours

if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
