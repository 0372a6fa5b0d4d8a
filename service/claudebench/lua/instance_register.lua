-- INSTANCE_REGISTER: register (or re-register) an instance as active, record it in the liveness
-- index and take the leader lease if nobody holds it. Re-registering keeps the tasks it holds.
--
-- KEYS[1] instance         cb:instance:{id}          HASH    the registration
-- KEYS[2] liveness         cb:instances:liveness     ZSET    instance ids, score = lastSeen (ms)
-- KEYS[3] leader           cb:leader:current         STRING  the leader's id, expires after ttl_ms
-- KEYS[4] offline          cb:instances:offline      ZSET    instances declared offline, score = when
-- KEYS[5] queues           cb:queues                 ZSET    queue registry (name, first use ms)
--
-- ARGV[1] instance_id      string
-- ARGV[2] now_ms           integer  epoch milliseconds
-- ARGV[3] ttl_ms           integer  liveness TTL; also the leader lease
-- ARGV[4] max_tasks        integer  how many tasks the instance may hold at once
-- ARGV[5] roles            string   JSON array of role names
-- ARGV[6] metadata         string   JSON object
-- ARGV[7] queues           string   JSON array of the queue names it serves (validated, not empty)
--
-- Returns {code, payload}:
--   OK   payload = {"becameLeader":bool,"isLeader":bool}
--
-- Events: none
-- include: lib/instance.lua

local instance_key, liveness_key, leader_key, offline_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local instance_id, now_ms, ttl_ms, max_tasks, roles, metadata, queues =
  ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7]

redis.call('HSETNX', instance_key, 'registeredAt', now_ms)
redis.call('HSET', instance_key, 'id', instance_id, 'roles', roles, 'maxTasks', max_tasks,
  'metadata', metadata, 'status', 'active', 'lastSeen', now_ms, 'queues', queues)
for _, name in ipairs(cjson.decode(queues)) do
  redis.call('ZADD', KEYS[5], 'NX', now_ms, name)
end
redis.call('ZADD', liveness_key, now_ms, instance_id)
-- Back from offline: its tasks were recovered already; the record is kept again.
redis.call('ZREM', offline_key, instance_id)
redis.call('PERSIST', instance_key)
redis.call('HDEL', instance_key, 'offlineAt')

local became_leader, is_leader = renew_or_take_leadership(leader_key, instance_id, ttl_ms)
return {'OK', cjson.encode({becameLeader = became_leader, isLeader = is_leader})}
