-- Records attempts and moves deliveries on; frees their slots, counts their reach for the
-- circuits and hands freed slots to waiting deliveries (relay/store/deliveries.py); uses
-- promote() of _promote.lua (not for a paused subscription, and up to its own maxInFlight).
-- The HDEL of a closing circuit names the fields of
-- relay/store/subscription_status.py CIRCUIT_FIELDS (a test keeps them the same).
--
-- KEYS: 1 due, 2 claims, 3 dead, 4 circuits, 5 waiting index, then (inflight, waiting,
--       status, subscription) per subscription, then (delivery, attempts) per item
-- ARGV: 1 now ms, 2 attempts kept, 3 terminal TTL s, 4 cap (0: none), 5 lease until ms,
--       6 failures to open a circuit, 7 cool-down ms, 8 cool-down max ms, 9 number of
--       subscriptions, their ids, then (id, state, next ms or '', reason, attempt JSON or
--       '', subscription's position from 1 or 0, reach) per item; reach: ok (the receiver
--       answered), down (timeout, connection failed), '' (not counted)
-- Returns {ids whose state changed (a delivery already terminal keeps its state), ids
--   handed a freed slot or next of an ordering key (to attempt now), subscriptions whose
--   circuit opened, ... closed}

local now, cap, ttl = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local slots, lease_until = tonumber(ARGV[4]), tonumber(ARGV[5])
local failures, cooldown, cooldown_max = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
local subs = tonumber(ARGV[9])
local changed, promoted, opened, closed = {}, {}, {}, {}

local function reached(sub, status)
  if redis.call('HGET', status, 'circuit') then
    redis.call('HDEL', status, 'consecutiveFailures', 'circuit', 'circuitOpenedAt',
      'circuitRetryAt', 'circuitCooldown', 'circuitProbe', 'circuitProbeUntil')
    redis.call('ZREM', KEYS[4], sub)
    closed[#closed + 1] = sub
  end
  redis.call('HDEL', status, 'consecutiveFailures')
end

local function unreachable(id, sub, status, subkey)
  if redis.call('EXISTS', subkey) == 0 then return end
  local count = redis.call('HINCRBY', status, 'consecutiveFailures', 1)
  local c = redis.call('HMGET', status, 'circuit', 'circuitProbe', 'circuitCooldown')
  if c[1] == 'open' then
    if c[2] == id then  -- the probe failed: open again, for longer
      local wait = math.min(tonumber(c[3] or cooldown) * 2, cooldown_max)
      redis.call('HSET', status, 'circuitCooldown', wait, 'circuitRetryAt', now + wait)
      redis.call('HDEL', status, 'circuitProbe', 'circuitProbeUntil')
      redis.call('ZADD', KEYS[4], now + wait, sub)
    end
  elseif count >= failures then
    redis.call('HSET', status, 'circuit', 'open', 'circuitOpenedAt', now,
      'circuitCooldown', cooldown, 'circuitRetryAt', now + cooldown)
    redis.call('ZADD', KEYS[4], now + cooldown, sub)
    opened[#opened + 1] = sub
  end
end

local first = 6 + 4 * subs  -- the first item's delivery key
for i = 0, (#KEYS - first + 1) / 2 - 1 do
  local dkey, akey = KEYS[first + 2 * i], KEYS[first + 1 + 2 * i]
  local a = 10 + subs + 7 * i
  local id, state, nxt = ARGV[a], ARGV[a + 1], ARGV[a + 2]
  local reason, attempt, s, reach = ARGV[a + 3], ARGV[a + 4], tonumber(ARGV[a + 5]), ARGV[a + 6]
  local cur = redis.call('HGET', dkey, 'state')
  if cur then
    if attempt ~= '' then
      redis.call('RPUSH', akey, attempt)
      redis.call('LTRIM', akey, -cap, -1)
      redis.call('HINCRBY', dkey, 'attempts', 1)
    end
    if cur == 'pending' or cur == 'failed' then
      redis.call('HSET', dkey, 'state', state, 'updated', now, 'reason', reason, 'next', nxt)
      redis.call('ZREM', KEYS[2], id)
      if state == 'failed' then
        redis.call('ZADD', KEYS[1], nxt, id)
      else
        redis.call('ZREM', KEYS[1], id)
        if state == 'delivered' then redis.call('HSET', dkey, 'delivered', now) end
        if state == 'dead' or state == 'gone' then redis.call('ZADD', KEYS[3], now, id) end
        -- ordered: the next of its key goes now (claim.lua held it back)
        local o = redis.call('HMGET', dkey, 'order', 'orders')
        if o[1] and o[1] ~= '' and redis.call('ZREM', o[1], id) == 1 then
          local head = redis.call('ZRANGE', o[1], 0, 0)[1]
          if head then
            redis.call('ZADD', KEYS[1], now, head)
            promoted[#promoted + 1] = head
          else
            redis.call('SREM', o[2], o[1])
          end
        end
        if ttl > 0 then
          redis.call('EXPIRE', dkey, ttl)
          redis.call('EXPIRE', akey, ttl)
        end
      end
      changed[#changed + 1] = id
    end
  end
  if s > 0 then
    local sub, k = ARGV[9 + s], 2 + 4 * s
    local status = KEYS[k + 2]
    redis.call('ZREM', KEYS[k], id)
    redis.call('ZREM', KEYS[k + 1], id)
    if reach == 'ok' then
      reached(sub, status)
    elseif reach == 'down' then
      unreachable(id, sub, status, KEYS[k + 3])
    elseif redis.call('HGET', status, 'circuitProbe') == id then
      -- a probe that tested nothing (skipped, a protocol error): the next waits a cool-down
      local wait = tonumber(redis.call('HGET', status, 'circuitCooldown') or cooldown)
      redis.call('HSET', status, 'circuitRetryAt', now + wait)
      redis.call('HDEL', status, 'circuitProbe', 'circuitProbeUntil')
      redis.call('ZADD', KEYS[4], now + wait, sub)
    end
  end
end
if slots > 0 then
  for s = 1, subs do
    local sub, k = ARGV[9 + s], 2 + 4 * s
    local c = redis.call('HMGET', KEYS[k + 2], 'circuit', 'pausedUntil', 'maxInFlight')
    if c[1] ~= 'open' and tonumber(c[2] or 0) <= now then
      local cap_s = tonumber(c[3]) or slots
      promote(sub, KEYS[k], KEYS[k + 1], now, lease_until, cap_s, KEYS[1], promoted)
      if redis.call('EXISTS', KEYS[k + 1]) == 0 then redis.call('SREM', KEYS[5], sub) end
    end
  end
end
return {changed, promoted, opened, closed}
