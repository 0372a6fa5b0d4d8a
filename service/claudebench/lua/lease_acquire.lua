-- LEASE_ACQUIRE: take or renew a named lease (e.g. the background failure-recovery job), so that one
-- server replica at a time does the work. Only the owner renews; a lapsed lease is free to take.
--
-- KEYS[1] lease            cb:lease:{name}           STRING  the owner's id, expires after ttl_ms
--
-- ARGV[1] owner            string   the replica asking
-- ARGV[2] ttl_ms           integer  lease duration
--
-- Returns {code, payload}:
--   OK   payload = {"held":bool}
--
-- Events: none

local lease_key, owner, ttl_ms = KEYS[1], ARGV[1], ARGV[2]
local current = redis.call('GET', lease_key)
if current == owner then
  redis.call('PEXPIRE', lease_key, ttl_ms)
  return {'OK', '{"held":true}'}
end
if not current then
  redis.call('SET', lease_key, owner, 'PX', ttl_ms)
  return {'OK', '{"held":true}'}
end
return {'OK', '{"held":false}'}
