-- Moves a pull source's cursor forward only: a slow puller must not rewind a faster one's
-- progress (relay/store/sources.py).
--
-- KEYS: 1 cursor
-- ARGV: 1 new position
-- Returns 1 when it moved, else 0

local current = tonumber(redis.call('GET', KEYS[1]) or '-1')
if tonumber(ARGV[1]) > current then redis.call('SET', KEYS[1], ARGV[1]) return 1 end
return 0
