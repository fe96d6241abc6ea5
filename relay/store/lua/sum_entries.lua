-- Sets the entries total from the counts once every stored subscription has one
-- (relay/store/subscriptions.py).
--
-- KEYS: 1 entries, 2 entries total, 3 index
-- ARGV: none
-- Returns 1 when the total exists, 0 when a subscription is not counted yet

if redis.call('EXISTS', KEYS[2]) == 1 then return 1 end
for _, id in ipairs(redis.call('ZRANGE', KEYS[3], 0, -1)) do
  if redis.call('HEXISTS', KEYS[1], id) == 0 then return 0 end
end
local total = 0
for _, entries in ipairs(redis.call('HVALS', KEYS[1])) do total = total + tonumber(entries) end
redis.call('SET', KEYS[2], total)
return 1
