-- TASK_RELEASE: the worker that holds a task gives it back; it returns to the pending queue at its
-- original place (same priority and creation order).
--
-- KEYS[1] task             cb:task:{id}                  HASH    the task
-- KEYS[2] held             cb:queue:instance:{worker}    ZSET    tasks the worker holds
-- KEYS[3] pending          cb:queue:tasks:pending        ZSET    pending queue
-- KEYS[4] idx_pending      cb:tasks:status:pending       ZSET    status index
-- KEYS[5] idx_in_progress  cb:tasks:status:in_progress   ZSET    status index
-- KEYS[6] events           cb:stream:tasks               STREAM  task events
--
-- ARGV[1] task_id          string
-- ARGV[2] worker_id        string   must be the holder
-- ARGV[3] now_ms           integer  epoch milliseconds
-- ARGV[4] maxlen           integer  approximate retention of the event stream
-- ARGV[5] reason           string   recorded as releaseReason ('' = none given)
--
-- Returns {code, payload}:
--   OK         payload = task snapshot
--   NOT_FOUND  payload = message
--   NOT_HELD   payload = message; the task is not in progress with this worker
--
-- Events: RELEASED
-- include: lib/task.lua

local task_key, held_key, events_key = KEYS[1], KEYS[2], KEYS[6]
local k = {pending = KEYS[3], idx_pending = KEYS[4], idx_in_progress = KEYS[5]}
local task_id, worker_id, now_ms, maxlen, reason = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]

local task = redis.call('HMGET', task_key, 'status', 'assignedTo')
local status, assigned_to = task[1], task[2] or ''
if not status then
  return {'NOT_FOUND', 'Task ' .. task_id .. ' does not exist'}
end
if status ~= 'in_progress' or assigned_to ~= worker_id then
  return {'NOT_HELD', 'Task ' .. task_id .. ' is not held by ' .. worker_id .. ' (status ' ..
    status .. ')'}
end

redis.call('ZREM', held_key, task_id)
requeue(task_key, task_id, now_ms, k)
redis.call('HSET', task_key, 'releaseReason', reason)

local snapshot = task_snapshot(task_key)
append_event(events_key, maxlen, 'released', task_id, worker_id, now_ms, snapshot)
return {'OK', snapshot}
