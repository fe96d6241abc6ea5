-- Claims due deliveries with a lease (relay/store/deliveries.py); uses admit() of
-- _admit.lua. The due ones that are not admitted move from relay:due to their
-- subscription's waiting set (no attempt).
--
-- KEYS: 1 due, 2 claims, 3 waiting index, then (inflight, waiting, status) per
--       subscription, then the delivery of each id
-- ARGV: 1 now ms, 2 lease until ms, 3 cap (0: no cap, no circuit), 4 number of
--       subscriptions, their ids, then (id, its subscription's position from 1, 0 for
--       none) per id
-- Returns {flat [id, HGETALL, id, HGETALL, ...] of the deliveries claimed, ids left alone
--   because their record names another subscription}
--
-- An ordered delivery (its record names its ordering key's list, create_deliveries.lua)
-- goes only as the list's head: behind an unfinished one it leaves the due set and waits
-- in the list until finishing the head lets it go (finish.lua). A head whose record is
-- gone or finished is dropped from the list, so it never holds the key. A head goes only
-- once every earlier event is fanned out (none below it in the outbox): fan-outs run
-- concurrently, and an earlier event's delivery may not exist yet. Until then it waits in
-- the fan-out wait set, which each fan-out (and the pump) releases (release_fanned_out.lua).
-- ARGV ends with the outbox-by-id key and the fan-out wait key.

local function held(id, key, order)
  if not order or order == '' or not redis.call('ZSCORE', order, id) then return false end
  local prefix = string.sub(key, 1, #key - #id)
  for _ = 1, 100 do
    local head = redis.call('ZRANGE', order, 0, 0)[1]
    if head == id then return false end
    local state = redis.call('HGET', prefix .. head, 'state')
    if state == 'pending' or state == 'failed' then return true end
    redis.call('ZREM', order, head)
  end
  return true
end

local outbox_ids, fanout_wait = ARGV[#ARGV - 1], ARGV[#ARGV]

-- the event id of an ordered head whose earlier events are not all fanned out yet
local function unfanned_before(order, event)
  if not order or order == '' or not event or event == '' then return nil end
  local low = redis.call('ZRANGE', outbox_ids, 0, 0)[1]
  if low and tonumber(low) < tonumber(event) then return tonumber(event) end
  return nil
end

local now, lease_until, cap = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local subs = tonumber(ARGV[4])
local out, unknown = {}, {}
for i = 0, (#KEYS - 3 - 3 * subs) - 1 do
  local key = KEYS[4 + 3 * subs + i]
  local id, s = ARGV[5 + subs + 2 * i], tonumber(ARGV[6 + subs + 2 * i])
  local sub = s > 0 and ARGV[4 + s] or ''
  local inflight, waiting, status = KEYS[1 + 3 * s], KEYS[2 + 3 * s], KEYS[3 + 3 * s]
  local f = redis.call('HMGET', key, 'state', 'next', 'kind', 'sub', 'order', 'event')
  local state = f[1]
  if state ~= 'pending' and state ~= 'failed' then
    -- missing or terminal: a duplicate task or a stale queue entry; nothing to do
    redis.call('ZREM', KEYS[1], id)
    redis.call('ZREM', KEYS[2], id)
    if s > 0 then redis.call('ZREM', waiting, id) end
  elseif cap > 0 and f[3] ~= 'test' and (f[4] or '') ~= sub then
    unknown[#unknown + 1] = id
  elseif held(id, key, f[5]) then
    redis.call('ZREM', KEYS[1], id)
  elseif unfanned_before(f[5], f[6]) then
    redis.call('ZREM', KEYS[1], id)
    redis.call('ZADD', fanout_wait, tonumber(f[6]), id)
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
