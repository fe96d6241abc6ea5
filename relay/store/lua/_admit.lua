-- Shared by claim.lua (prepended by relay/store/scripts.py), no script on its own.
-- admit(): admission of one delivery of a subscription (cap > 0, not a test delivery):
-- none while it is paused (its receiver asked, with Retry-After); while its circuit is
-- open only one probe goes, once the cool-down is over; otherwise
-- at most `cap` deliveries hold a slot (relay:sub:{id}:inflight, entries ending with
-- their lease). A delivery already there holds the slot kept for it when it was handed
-- a freed one.

local function admit(id, inflight, status, now, lease_until, cap)
  local c = redis.call('HMGET', status, 'circuit', 'circuitRetryAt', 'circuitProbeUntil',
    'circuitProbe', 'pausedUntil')
  if tonumber(c[5] or 0) > now then return false end
  if c[1] == 'open' then
    -- the probe the pump reserved goes; any other only once the cool-down is over and no
    -- probe is out
    if c[4] ~= id and (now < tonumber(c[2] or 0) or tonumber(c[3] or 0) > now) then
      return false
    end
    redis.call('HSET', status, 'circuitProbe', id, 'circuitProbeUntil', lease_until)
  else
    redis.call('ZREMRANGEBYSCORE', inflight, '-inf', now)
    if not redis.call('ZSCORE', inflight, id) and redis.call('ZCARD', inflight) >= cap then
      return false
    end
  end
  redis.call('ZADD', inflight, lease_until, id)
  redis.call('PEXPIREAT', inflight, lease_until)
  return true
end
