-- GET_SYSTEM_HEALTH: the counts the health rules are made of, read in one consistent step.
--
-- KEYS[1] liveness         cb:instances:liveness     ZSET    instances by last seen
-- KEYS[2] offline          cb:instances:offline      ZSET    instances declared offline
-- KEYS[3] partition        cb:partition:detected     STRING  set while a partition is suspected
--
-- ARGV[1] now_ms           integer  epoch milliseconds
-- ARGV[2] ttl_ms           integer  liveness TTL
--
-- Returns {code, payload}:
--   OK   payload = {"live":n,"stale":n,"offline":n,"partition":bool}
--
-- Events: none

local now_ms, ttl_ms = tonumber(ARGV[1]), tonumber(ARGV[2])
return {'OK', cjson.encode({
  live = redis.call('ZCOUNT', KEYS[1], now_ms - ttl_ms, '+inf'),
  stale = redis.call('ZCOUNT', KEYS[1], '-inf', '(' .. (now_ms - ttl_ms)),
  offline = redis.call('ZCARD', KEYS[2]),
  partition = redis.call('EXISTS', KEYS[3]) == 1,
})}
