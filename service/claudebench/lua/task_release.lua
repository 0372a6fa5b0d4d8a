-- TASK_RELEASE: the worker that holds a task gives it back; it returns to the pending queue at its
-- original place (same priority and creation order).
--
-- KEYS[1] task             cb:task:{id}                  HASH    the task
-- KEYS[2] held             cb:queue:instance:{worker}    ZSET    tasks the worker holds
-- KEYS[3] pending          cb:queue:{q}:pending          ZSET    the task's queue's pending tasks
-- KEYS[4] idx_pending      cb:tasks:status:pending       ZSET    status index
-- KEYS[5] idx_in_progress  cb:tasks:status:in_progress   ZSET    status index
-- KEYS[6] events           cb:stream:tasks               STREAM  task events
-- KEYS[7] backlog          cb:queue:{q}:backlog          ZSET    fairness backlog of the queue
-- KEYS[8] fair             cb:queue:{q}:fair             HASH    fairness turns of the queue
-- KEYS[9] counts           cb:queues:counts              HASH    per-queue status counters
--
-- ARGV[1] task_id          string
-- ARGV[2] worker_id        string   must be the holder
-- ARGV[3] now_ms           integer  epoch milliseconds
-- ARGV[4] maxlen           integer  approximate retention of the event stream
-- ARGV[5] reason           string   recorded as releaseReason ('' = none given)
-- ARGV[6] queue            string   the task's queue as the caller believes it
--
-- Returns {code, payload}:
--   OK         payload = task snapshot
--   NOT_FOUND  payload = message
--   NOT_HELD   payload = message; the task is not in progress with this worker
--   WRONG_QUEUE  payload = the task's queue: call again with its keys
--
-- Events: RELEASED
-- include: lib/task.lua
-- include: lib/queue.lua

local task_key, held_key, events_key = KEYS[1], KEYS[2], KEYS[6]
local k = {idx_pending = KEYS[4], idx_in_progress = KEYS[5], counts = KEYS[9]}
local task_id, worker_id, now_ms, maxlen, reason = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local q = {name = ARGV[6], pending = KEYS[3], backlog = KEYS[7], fair = KEYS[8]}

local wrong = wrong_queue(task_key, q.name)
if wrong then
  return wrong
end

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
requeue(q, task_key, task_id, now_ms, k)
redis.call('HSET', task_key, 'releaseReason', reason)

local snapshot = task_snapshot(task_key)
append_event(events_key, maxlen, 'released', task_id, worker_id, now_ms, snapshot)
return {'OK', snapshot}
