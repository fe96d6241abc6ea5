"""Lua scripts behind relay/store/deliveries.py: each state change of a delivery is atomic.

Invariant they keep: a delivery that is `pending` or `failed` is in relay:due (score = when a
worker should next pick it up); a terminal one (delivered, dead, gone, skipped) is not. A
claim is a lease in relay:claims; while it is held no other worker may attempt the delivery.
Every key is passed in KEYS (built by relay/store/keys.py), never assembled in Lua.
"""

from __future__ import annotations

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

# KEYS: due, claims, then delivery per id; ARGV: now, lease_until, then ids
# -> flat [id, HGETALL, id, HGETALL, ...] of the deliveries claimed
CLAIM = """
local now = tonumber(ARGV[1])
local out = {}
for i = 3, #KEYS do
  local id, key = ARGV[i], KEYS[i]
  local f = redis.call('HMGET', key, 'state', 'next')
  local state = f[1]
  if state ~= 'pending' and state ~= 'failed' then
    -- missing or terminal: a duplicate task or a stale queue entry; nothing to do
    redis.call('ZREM', KEYS[1], id)
    redis.call('ZREM', KEYS[2], id)
  elseif tonumber(f[2] or 0) <= now then
    local held = redis.call('ZSCORE', KEYS[2], id)
    if not held or tonumber(held) <= now then
      redis.call('ZADD', KEYS[2], ARGV[2], id)
      -- if this worker dies, the pump finds the delivery due again when the lease ends
      redis.call('ZADD', KEYS[1], ARGV[2], id)
      out[#out + 1] = id
      out[#out + 1] = redis.call('HGETALL', key)
    end
  end
end
return out
"""

# KEYS: due, claims, dead, then (delivery, attempts) per item
# ARGV: now, attempts_cap, terminal_ttl_s, then (id, state, next, reason, attempt_json) per item
# -> ids whose state changed (a delivery already terminal keeps its state)
FINISH = """
local now, cap, ttl = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local changed = {}
local n = (#KEYS - 3) / 2
for i = 0, n - 1 do
  local dkey, akey = KEYS[4 + 2 * i], KEYS[5 + 2 * i]
  local id, state, nxt = ARGV[4 + 5 * i], ARGV[5 + 5 * i], ARGV[6 + 5 * i]
  local reason, attempt = ARGV[7 + 5 * i], ARGV[8 + 5 * i]
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
end
return changed
"""

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
