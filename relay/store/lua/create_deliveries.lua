-- Creates the deliveries that do not exist yet, idempotently (relay/store/deliveries.py).
--
-- KEYS: 1 due, then (delivery, subscription deliveries) per item
-- ARGV: 1 now ms, 2 due at ms, 3 ids kept per subscription, then (id, kind, subscription,
--       event id or '', its ordering key's list or '', the subscription's set of those or
--       '') per item. An ordered delivery joins its key's list, by event id: the claim lets
--       only the list's head go (claim.lua), finishing it lets the next go (finish.lua).
-- Returns the ids created now or still pending (to enqueue)

local now, due_at, cap = ARGV[1], ARGV[2], tonumber(ARGV[3])
local out = {}
local n = (#KEYS - 1) / 2
for i = 0, n - 1 do
  local dkey, skey = KEYS[2 + 2 * i], KEYS[3 + 2 * i]
  local a = 4 + 6 * i
  local id, order, orders = ARGV[a], ARGV[a + 4], ARGV[a + 5]
  local state = redis.call('HGET', dkey, 'state')
  if not state then
    redis.call('HSET', dkey, 'kind', ARGV[a + 1], 'sub', ARGV[a + 2],
      'event', ARGV[a + 3], 'state', 'pending', 'attempts', 0, 'created', now,
      'updated', now, 'next', now, 'reason', '', 'order', order, 'orders', orders)
    if order ~= '' then
      redis.call('ZADD', order, tonumber(ARGV[a + 3]), id)
      redis.call('SADD', orders, order)
    end
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
