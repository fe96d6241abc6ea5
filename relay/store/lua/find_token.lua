-- A token by its secret's hash: hash -> id -> token in one round trip (every
-- authenticated request runs it; relay/store/tokens.py).
--
-- KEYS: 1 the secret hash's key
-- ARGV: 1 token key prefix
-- Returns {token id, flat HGETALL of the token} or nil when there is no such token

local id = redis.call('GET', KEYS[1])
if not id then return false end
return {id, redis.call('HGETALL', ARGV[1] .. id)}
