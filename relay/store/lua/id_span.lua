-- The relay id span of a time window over flag-event indexes (read-only;
-- relay/store/flag_events.py).
--
-- KEYS: the indexes (scored by createdAt ms)
-- ARGV: 1 start ms, 2 stop ms
-- Returns {smallest, largest} relay id in the window, or {} when none is

local first_id, last_id = math.huge, -math.huge
for i = 1, #KEYS do
  for _, member in ipairs(redis.call('ZRANGEBYSCORE', KEYS[i], ARGV[1], ARGV[2])) do
    local id = tonumber(member)
    if id < first_id then first_id = id end
    if id > last_id then last_id = id end
  end
end
if first_id > last_id then return {} end
return {first_id, last_id}
