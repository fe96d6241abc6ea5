-- Creates the deliveries that do not exist yet, idempotently (relay/store/deliveries.py).
--
-- KEYS: 1 due, then (delivery, subscription deliveries) per item
-- ARGV: 1 now ms, 2 due at ms, 3 ids kept per subscription, then (id, kind, subscription,
--       event id or '') per item
-- Returns the ids created now or still pending (to enqueue)

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
