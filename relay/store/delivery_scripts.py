"""Lua scripts behind relay/store/deliveries.py: each state change of a delivery is atomic.

Invariant they keep: a delivery that is `pending` or `failed` is in relay:due (score = when a
worker should next pick it up) or, when its subscription had no free slot or its circuit was
open, in that subscription's waiting set; a terminal one (delivered, dead, gone, skipped) is
in neither. A claim is a lease in relay:claims; while it is held no other worker may attempt
the delivery. Every key is passed in KEYS (built by relay/store/keys.py), never assembled in
Lua.
"""

from __future__ import annotations

from relay.store.subscription_status import CIRCUIT_FIELDS

# KEYS: due, then (delivery, subscription deliveries) per item
# ARGV: now, due_at, cap, then (id, kind, sub, event) per item
# -> ids created now or still pending (to enqueue)
CREATE = """
local now, due_at, cap = ARGV[1], ARGV[2], tonumber(ARGV[3])
local out = {}
local n = (#KEYS - 1) / 2
for i = 0, n - 1 do
  local dkey, skey = KEYS[2 + 2 * i], KEYS[3 + 2 * i]
  local id = ARGV[4 + 4 * i]
  local state = redis.call('HGET', dkey, 'state')
  if not state then
    redis.call('HSET', dkey, 'kind', ARGV[5 + 4 * i], 'sub', ARGV[6 + 4 * i],
      'event', ARGV[7 + 4 * i], 'state', 'pending', 'attempts', 0, 'created', now,
      'updated', now, 'next', now, 'reason', '')
    redis.call('ZADD', KEYS[1], due_at, id)
    redis.call('ZADD', skey, now, id)
    if redis.call('ZCARD', skey) > cap then
      redis.call('ZREMRANGEBYRANK', skey, 0, -cap - 1)
    end
    out[#out + 1] = id
  elseif state == 'pending' then
    out[#out + 1] = id
  end
end
return out
"""

# Admission of one delivery of a subscription (cap > 0, not a test delivery): while its
# circuit is open only one probe goes, once the cool-down is over; otherwise at most `cap`
# deliveries hold a slot (relay:sub:{id}:inflight, entries ending with their lease). A
# delivery already there holds the slot kept for it when it was handed a freed one.
_ADMIT = """
local function admit(id, inflight, status, now, lease_until, cap)
  local c = redis.call('HMGET', status, 'circuit', 'circuitRetryAt', 'circuitProbeUntil',
    'circuitProbe')
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
"""

# KEYS: due, claims, waiting index, then (inflight, waiting, status) per subscription, then
#       the delivery of each id
# ARGV: now, lease_until, cap (0: no cap, no circuit), number of subscriptions, their ids,
#       then (id, subscription's position among them, 0 for none) per id
# -> {flat [id, HGETALL, id, HGETALL, ...] of the deliveries claimed, ids left alone because
#    their record names another subscription}; the due ones that were not admitted move
#    from relay:due to their subscription's waiting set (no attempt)
CLAIM = (
    _ADMIT
    + """
local now, lease_until, cap = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local subs = tonumber(ARGV[4])
local out, unknown = {}, {}
for i = 0, (#KEYS - 3 - 3 * subs) - 1 do
  local key = KEYS[4 + 3 * subs + i]
  local id, s = ARGV[5 + subs + 2 * i], tonumber(ARGV[6 + subs + 2 * i])
  local sub = s > 0 and ARGV[4 + s] or ''
  local inflight, waiting, status = KEYS[1 + 3 * s], KEYS[2 + 3 * s], KEYS[3 + 3 * s]
  local f = redis.call('HMGET', key, 'state', 'next', 'kind', 'sub')
  local state = f[1]
  if state ~= 'pending' and state ~= 'failed' then
    -- missing or terminal: a duplicate task or a stale queue entry; nothing to do
    redis.call('ZREM', KEYS[1], id)
    redis.call('ZREM', KEYS[2], id)
    if s > 0 then redis.call('ZREM', waiting, id) end
  elseif cap > 0 and f[3] ~= 'test' and (f[4] or '') ~= sub then
    unknown[#unknown + 1] = id
  elseif tonumber(f[2] or 0) <= now then
    local held = redis.call('ZSCORE', KEYS[2], id)
    if not held or tonumber(held) <= now then
      if cap == 0 or s == 0 or f[3] == 'test'
          or admit(id, inflight, status, now, lease_until, cap) then
        redis.call('ZADD', KEYS[2], lease_until, id)
        -- if this worker dies, the pump finds the delivery due again when the lease ends
        redis.call('ZADD', KEYS[1], lease_until, id)
        if s > 0 then redis.call('ZREM', waiting, id) end
        out[#out + 1] = id
        out[#out + 1] = redis.call('HGETALL', key)
      else
        redis.call('ZREM', KEYS[1], id)
        redis.call('ZADD', waiting, tonumber(f[2] or now), id)
        redis.call('SADD', KEYS[3], sub)
      end
    end
  end
end
return {out, unknown}
"""
)

# Handing freed slots of a subscription (circuit closed) to its waiting deliveries, oldest
# first: each is due again after a lease (if the hand-off is lost) and keeps its slot.
_PROMOTE = """
local function promote(sub, inflight, waiting, now, lease_until, cap, due, out)
  redis.call('ZREMRANGEBYSCORE', inflight, '-inf', now)
  local free = cap - redis.call('ZCARD', inflight)
  if free > 0 then
    local ids = redis.call('ZRANGE', waiting, 0, free - 1)
    for _, id in ipairs(ids) do
      redis.call('ZREM', waiting, id)
      redis.call('ZADD', due, lease_until, id)
      redis.call('ZADD', inflight, lease_until, id)
      out[#out + 1] = id
    end
    if #ids > 0 then redis.call('PEXPIREAT', inflight, lease_until) end
  end
end
"""

# the status hash's circuit fields as Lua arguments: the list is kept in one place
_CIRCUIT_FIELDS = ", ".join(f"'{name}'" for name in CIRCUIT_FIELDS)

# KEYS: due, claims, dead, circuits, waiting index, then (inflight, waiting, status,
#       subscription) per subscription, then (delivery, attempts) per item
# ARGV: now, attempts_cap, terminal_ttl_s, cap (0: none), lease_until, failures, cooldown_ms,
#       cooldown_max_ms, number of subscriptions, their ids, then (id, state, next, reason,
#       attempt_json, subscription's position or 0, reach) per item; reach: ok (the
#       receiver answered), down (timeout, connection failed), '' (not counted)
# -> {ids whose state changed (a delivery already terminal keeps its state), ids handed a
#     freed slot (to attempt now), subscriptions whose circuit opened, ... closed}
FINISH = (
    _PROMOTE
    + """
local now, cap, ttl = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local slots, lease_until = tonumber(ARGV[4]), tonumber(ARGV[5])
local failures, cooldown, cooldown_max = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
local subs = tonumber(ARGV[9])
local changed, promoted, opened, closed = {}, {}, {}, {}

local function reached(sub, status)
  if redis.call('HGET', status, 'circuit') then
    redis.call('HDEL', status, """
    + _CIRCUIT_FIELDS
    + """)
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
    if redis.call('HGET', KEYS[k + 2], 'circuit') ~= 'open' then
      promote(sub, KEYS[k], KEYS[k + 1], now, lease_until, slots, KEYS[1], promoted)
      if redis.call('EXISTS', KEYS[k + 1]) == 0 then redis.call('SREM', KEYS[5], sub) end
    end
  end
end
return {changed, promoted, opened, closed}
"""
)

# KEYS: due, circuits, waiting index, then (inflight, waiting, status) per subscription
# ARGV: now, lease_until, cap, release_max, then (subscription, release) per subscription
# -> ids to enqueue now: of a subscription turned off or deleted (`release` 1), up to
# release_max waiting ones (its claims skip them); of one whose circuit is open, one probe
# once the cool-down is over; of any other, as many as it has free slots
WAKE = (
    _PROMOTE
    + """
local now, lease_until = tonumber(ARGV[1]), tonumber(ARGV[2])
local cap, release_max = tonumber(ARGV[3]), tonumber(ARGV[4])
local out = {}
for i = 0, (#KEYS - 3) / 3 - 1 do
  local inflight, waiting, status = KEYS[4 + 3 * i], KEYS[5 + 3 * i], KEYS[6 + 3 * i]
  local sub, release = ARGV[5 + 2 * i], ARGV[6 + 2 * i]
  local c = redis.call('HMGET', status, 'circuit', 'circuitRetryAt', 'circuitProbeUntil')
  if c[1] ~= 'open' then redis.call('ZREM', KEYS[2], sub) end
  if release == '1' then
    for _, id in ipairs(redis.call('ZRANGE', waiting, 0, release_max - 1)) do
      redis.call('ZREM', waiting, id)
      redis.call('ZADD', KEYS[1], lease_until, id)
      out[#out + 1] = id
    end
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
    promote(sub, inflight, waiting, now, lease_until, cap, KEYS[1], out)
  end
  if redis.call('EXISTS', waiting) == 0 then redis.call('SREM', KEYS[3], sub) end
end
return out
"""
)

# KEYS: due; ARGV: now, requeue_at, limit -> ids due now (their score moved to requeue_at)
TAKE_DUE = """
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
for _, id in ipairs(ids) do redis.call('ZADD', KEYS[1], ARGV[2], id) end
return ids
"""

# KEYS: delivery, attempts, due, dead; ARGV: id, now, due_at -> previous state, or nil
REVIVE = """
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
"""
