-- Counts one failed authentication in a fixed window (relay/store/ratelimit.py).
--
-- KEYS: 1 counter
-- ARGV: 1 window ms
-- Returns {failures in the window, ms until it ends}

local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {count, ttl}
