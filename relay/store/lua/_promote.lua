-- Shared by finish.lua and wake.lua (prepended by relay/store/scripts.py), no script on
-- its own. promote(): hands freed slots of a subscription (circuit closed) to its waiting
-- deliveries, oldest first: each is due again after a lease (if the hand-off is lost) and
-- keeps its slot.

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
