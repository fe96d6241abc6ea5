-- Hands waiting deliveries back to relay:due (relay/store/deliveries.py); uses promote()
-- of _promote.lua. Of a subscription turned off or deleted (`release` 1): up to
-- release_max waiting ones (its claims skip them); of a paused one: none until the pause
-- ends; of one whose circuit is open: one probe once the cool-down is over; of any other:
-- as many as it has free slots (its own `maxInFlight`, else `cap`).
--
-- KEYS: 1 due, 2 circuits, 3 waiting index, then (inflight, waiting, status) per
--       subscription
-- ARGV: 1 now ms, 2 lease until ms, 3 cap, 4 release max, then (subscription, release 1/0)
--       per subscription
-- Returns the ids to enqueue now

local now, lease_until = tonumber(ARGV[1]), tonumber(ARGV[2])
local cap, release_max = tonumber(ARGV[3]), tonumber(ARGV[4])
local out = {}
for i = 0, (#KEYS - 3) / 3 - 1 do
  local inflight, waiting, status = KEYS[4 + 3 * i], KEYS[5 + 3 * i], KEYS[6 + 3 * i]
  local sub, release = ARGV[5 + 2 * i], ARGV[6 + 2 * i]
  local c = redis.call('HMGET', status, 'circuit', 'circuitRetryAt', 'circuitProbeUntil',
    'pausedUntil', 'maxInFlight')
  if c[1] ~= 'open' then redis.call('ZREM', KEYS[2], sub) end
  if release == '1' then
    for _, id in ipairs(redis.call('ZRANGE', waiting, 0, release_max - 1)) do
      redis.call('ZREM', waiting, id)
      redis.call('ZADD', KEYS[1], lease_until, id)
      out[#out + 1] = id
    end
  elseif tonumber(c[4] or 0) > now then
    -- paused: its deliveries wait (no attempt) until the receiver's Retry-After is over
  elseif c[1] == 'open' then
    if now >= tonumber(c[2] or 0) and tonumber(c[3] or 0) <= now then
      for _, id in ipairs(redis.call('ZRANGE', waiting, 0, 0)) do
        redis.call('ZREM', waiting, id)
        redis.call('ZADD', KEYS[1], lease_until, id)
        -- reserved: the next pump run releases no other while this one is out
        redis.call('HSET', status, 'circuitProbe', id, 'circuitProbeUntil', lease_until)
        out[#out + 1] = id
      end
    end
  else
    promote(sub, inflight, waiting, now, lease_until, tonumber(c[5]) or cap, KEYS[1], out)
  end
  if redis.call('EXISTS', waiting) == 0 then redis.call('SREM', KEYS[3], sub) end
end
return out
