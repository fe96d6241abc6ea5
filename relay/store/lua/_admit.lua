-- Shared by claim.lua (prepended by relay/store/scripts.py), no script on its own.
-- admit(): admission of one delivery of a subscription (cap > 0, not a test delivery):
-- none while it is paused (its receiver asked, with Retry-After); while its circuit is
-- open only one probe goes, once the cool-down is over; otherwise at most its cap
-- (`maxInFlight` in its status, else `cap`) hold a slot (relay:sub:{id}:inflight, entries
-- ending with their lease); and with a `maxPerSecond` in its status, one token of its
-- bucket each (refilled at that rate, at most one second's worth saved). A delivery already
-- in the in-flight set holds the slot kept for it when it was handed a freed one; refused
-- for want of a token, it gives that slot back.

local function take_token(status, now, rate)
  local b = redis.call('HMGET', status, 'rateTokens', 'rateAt')
  local most = math.max(rate, 1)
  local tokens = tonumber(b[1] or most)
  local since = math.max(now - tonumber(b[2] or now), 0)
  tokens = math.min(most, tokens + since * rate / 1000)
  local taken = tokens >= 1
  if taken then tokens = tokens - 1 end
  redis.call('HSET', status, 'rateTokens', tostring(tokens), 'rateAt', now)
  return taken
end

local function admit(id, inflight, status, now, lease_until, cap)
  local c = redis.call('HMGET', status, 'circuit', 'circuitRetryAt', 'circuitProbeUntil',
    'circuitProbe', 'pausedUntil', 'maxInFlight', 'maxPerSecond')
  if tonumber(c[5] or 0) > now then return false end
  local probe = c[1] == 'open'
  if probe then
    -- the probe the pump reserved goes; any other only once the cool-down is over and no
    -- probe is out
    if c[4] ~= id and (now < tonumber(c[2] or 0) or tonumber(c[3] or 0) > now) then
      return false
    end
  else
    redis.call('ZREMRANGEBYSCORE', inflight, '-inf', now)
    if not redis.call('ZSCORE', inflight, id)
        and redis.call('ZCARD', inflight) >= (tonumber(c[6]) or cap) then
      return false
    end
  end
  local rate = tonumber(c[7])
  if rate and not take_token(status, now, rate) then
    redis.call('ZREM', inflight, id)
    return false
  end
  if probe then
    redis.call('HSET', status, 'circuitProbe', id, 'circuitProbeUntil', lease_until)
  end
  redis.call('ZADD', inflight, lease_until, id)
  redis.call('PEXPIREAT', inflight, lease_until)
  return true
end
