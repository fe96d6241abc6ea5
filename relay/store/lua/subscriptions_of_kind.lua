-- A page of the subscriptions of one integration, oldest first, and how many it has
-- (read-only; relay/store/subscriptions.py). A document starts with its id and kind
-- (`{"_id":"<24 hex>","kind":"<key>",...`), so only its first bytes are searched.
--
-- KEYS: 1 the subscriptions index (a sorted set of ids)
-- ARGV: 1 subscription key prefix, 2 needle (`"kind":"<key>"`), 3 offset, 4 limit
-- Returns {total, id...}

local offset, limit = tonumber(ARGV[3]), tonumber(ARGV[4])
local head = 64 + #ARGV[2]
local total, page = 0, {}
for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local doc = redis.call('GETRANGE', ARGV[1] .. id, 0, head)
  if string.find(doc, ARGV[2], 1, true) then
    if total >= offset and #page < limit then page[#page + 1] = id end
    total = total + 1
  end
end
table.insert(page, 1, total)
return page
