-- INSTANCE_UNREGISTER: an instance leaves: every task it holds goes back to the pending queue at its
-- original place, and every key of the instance is removed (registration, held set, liveness,
-- leader lease, gossip entry).
--
-- KEYS[1] instance         cb:instance:{id}              HASH    the registration
-- KEYS[2] liveness         cb:instances:liveness         ZSET    live instances by last seen
-- KEYS[3] offline          cb:instances:offline          ZSET    instances declared offline
-- KEYS[4] held             cb:queue:instance:{id}        ZSET    tasks the instance holds
-- KEYS[5] counts           cb:queues:counts              HASH    per-queue status counters
-- KEYS[6] idx_pending      cb:tasks:status:pending       ZSET    status index
-- KEYS[7] idx_in_progress  cb:tasks:status:in_progress   ZSET    status index
-- KEYS[8] events           cb:stream:tasks               STREAM  task events
-- KEYS[9] leader           cb:leader:current             STRING  the leader lease
-- KEYS[10] gossip          cb:gossip:health              HASH    instance id -> health
-- KEYS[11] gossip_counts   cb:gossip:counts              HASH    total, healthy
-- KEYS[12] system_events   cb:stream:system              STREAM  fleet events
-- KEYS[13..] tasks         per held task, 4 keys: cb:task:{id}, and its queue's
--                          cb:queue:{q}:pending, :backlog, :fair (as read by the caller)
--
-- ARGV[1] instance_id      string
-- ARGV[2] now_ms           integer  epoch milliseconds
-- ARGV[3] maxlen           integer  approximate retention of the task event stream
-- ARGV[4] system_maxlen    integer  approximate retention of the system event stream
-- ARGV[5..] tasks         strings  per held task, in the order of KEYS[13..]: id, queue
--
-- Returns {code, payload}:
--   OK         payload = {"released":n}
--   NOT_FOUND  payload = message
--   STALE      payload = message; the held set (or a task's queue) changed since the caller
--              read it, nothing written
--
-- Events: RELEASED (one per held task); system stream: instance.unregistered
-- include: lib/task.lua
-- include: lib/queue.lua
-- include: lib/instance.lua

local instance_key, offline_key, events_key, system_events_key = KEYS[1], KEYS[3], KEYS[8], KEYS[12]
local k = {liveness = KEYS[2], held = KEYS[4], counts = KEYS[5], idx_pending = KEYS[6],
  idx_in_progress = KEYS[7], leader = KEYS[9], gossip = KEYS[10], gossip_counts = KEYS[11]}
local instance_id, now_ms, maxlen, system_maxlen = ARGV[1], ARGV[2], ARGV[3], ARGV[4]

if redis.call('EXISTS', instance_key) == 0 then
  return {'NOT_FOUND', 'Instance ' .. instance_id .. ' is not registered'}
end
if not held_matches(k.held, 5, 2) then
  return {'STALE', 'The tasks of ' .. instance_id .. ' changed while it was unregistering'}
end

local held = held_tasks(13, 5)
if not held then
  return {'STALE', 'The tasks of ' .. instance_id .. ' changed queue while it was unregistering'}
end
for _, t in ipairs(held) do
  local task_key, task_id = t.key, t.id
  requeue(t.q, task_key, task_id, now_ms, k)
  redis.call('HSET', task_key, 'releaseReason', 'instance unregistered')
  append_event(events_key, maxlen, 'released', task_id, instance_id, now_ms, task_snapshot(task_key))
end
local released = #held
retire_instance(instance_id, k)
redis.call('ZREM', offline_key, instance_id)
redis.call('DEL', instance_key)
append_system_event(system_events_key, system_maxlen, 'instance.unregistered', now_ms,
  cjson.encode({instanceId = instance_id, tasksReleased = released}))
return {'OK', '{"released":' .. released .. '}'}
