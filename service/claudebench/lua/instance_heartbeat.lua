-- INSTANCE_HEARTBEAT: refresh a registered instance's liveness; renew its leader lease, or take the
-- lease when the leader has gone quiet (so a dead leader is replaced within one TTL).
--
-- KEYS[1] instance         cb:instance:{id}          HASH    the registration
-- KEYS[2] liveness         cb:instances:liveness     ZSET    instance ids, score = lastSeen (ms)
-- KEYS[3] leader           cb:leader:current         STRING  the leader's id, expires after ttl_ms
--
-- ARGV[1] instance_id      string
-- ARGV[2] now_ms           integer  epoch milliseconds
-- ARGV[3] ttl_ms           integer  liveness TTL; also the leader lease
--
-- Returns {code, payload}:
--   OK                payload = {"becameLeader":bool,"isLeader":bool}
--   NOT_FOUND         payload = message; unknown instance, it must register
--   INSTANCE_OFFLINE  payload = message; it was declared offline, it must register again
--
-- Events: none
-- include: lib/instance.lua

local instance_key, liveness_key, leader_key = KEYS[1], KEYS[2], KEYS[3]
local instance_id, now_ms, ttl_ms = ARGV[1], ARGV[2], ARGV[3]

local status = redis.call('HGET', instance_key, 'status')
if not status then
  return {'NOT_FOUND', 'Instance ' .. instance_id .. ' is not registered; call Register'}
end
if status ~= 'active' then
  return {'INSTANCE_OFFLINE', 'Instance ' .. instance_id .. ' was declared ' .. status ..
    '; call Register again'}
end

redis.call('HSET', instance_key, 'lastSeen', now_ms)
redis.call('ZADD', liveness_key, now_ms, instance_id)

local became_leader, is_leader = renew_or_take_leadership(leader_key, instance_id, ttl_ms)
return {'OK', cjson.encode({becameLeader = became_leader, isLeader = is_leader})}
