-- Counts the policy entries of stored subscriptions that have no count yet (stored before
-- counts existed), from their JSON; the total, when it exists, follows
-- (relay/store/subscriptions.py).
--
-- KEYS: 1 entries, 2 entries total, then the subscription of each id
-- ARGV: the ids
-- Returns 1

local lists = {'resources', 'notResources', 'actions', 'notActions'}
for i, id in ipairs(ARGV) do
  local raw = redis.call('GET', KEYS[i + 2])
  if raw and redis.call('HEXISTS', KEYS[1], id) == 0 then
    local entries = 0
    local statements = cjson.decode(raw)['statements']
    if type(statements) == 'table' then
      for _, statement in ipairs(statements) do
        for _, name in ipairs(lists) do
          if type(statement[name]) == 'table' then entries = entries + #statement[name] end
        end
      end
    end
    redis.call('HSET', KEYS[1], id, entries)
    if redis.call('EXISTS', KEYS[2]) == 1 then redis.call('INCRBY', KEYS[2], entries) end
  end
end
return 1
