-- TASK_COMPLETE: the worker that holds a task finishes it with a result (COMPLETED) or an error
-- (FAILED). A retry by the same worker after success returns the stored task with no second event.
--
-- KEYS[1] task             cb:task:{id}                  HASH    the task
-- KEYS[2] held             cb:queue:instance:{worker}    ZSET    tasks the worker holds
-- KEYS[3] idx_in_progress  cb:tasks:status:in_progress   ZSET    status index
-- KEYS[4] idx_completed    cb:tasks:status:completed     ZSET    status index
-- KEYS[5] idx_failed       cb:tasks:status:failed        ZSET    status index
-- KEYS[6] events           cb:stream:tasks               STREAM  task events
-- KEYS[7] queue_metrics    cb:metrics:queues             HASH    completed/failed counters
-- KEYS[8] throughput       cb:metrics:throughput         HASH    finishes per second (120-slot ring)
-- KEYS[9] instance         cb:instance:{worker}          HASH    the worker's tasksCompleted/Failed
--
-- ARGV[1] task_id          string
-- ARGV[2] worker_id        string   must be the holder
-- ARGV[3] now_ms           integer  epoch milliseconds
-- ARGV[4] maxlen           integer  approximate retention of the event stream
-- ARGV[5] outcome          string   result|error
-- ARGV[6] value            string   the result as JSON text, or the error message
--
-- Returns {code, payload}:
--   OK                payload = task snapshot (first completion, or a retry by the same worker)
--   NOT_FOUND         payload = message
--   ALREADY_FINISHED  payload = message; finished by another worker
--   NOT_HELD          payload = message; the task is not in progress with this worker
--
-- Events: COMPLETED or FAILED
-- include: lib/task.lua
-- include: lib/metrics.lua

local task_key, held_key, idx_in_progress_key, idx_completed_key, idx_failed_key, events_key =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local queue_metrics_key, throughput_key, instance_key = KEYS[7], KEYS[8], KEYS[9]
local task_id, worker_id, now_ms, maxlen, outcome, value =
  ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]

local task = redis.call('HMGET', task_key, 'status', 'assignedTo', 'seq')
local status, assigned_to, seq = task[1], task[2] or '', task[3]
if not status then
  return {'NOT_FOUND', 'Task ' .. task_id .. ' does not exist'}
end
if status == 'completed' or status == 'failed' then
  if assigned_to == worker_id then
    return {'OK', task_snapshot(task_key)}
  end
  return {'ALREADY_FINISHED', 'Task ' .. task_id .. ' is already ' .. status}
end
if status ~= 'in_progress' or assigned_to ~= worker_id then
  local holder = 'nobody'
  if assigned_to ~= '' then
    holder = assigned_to
  end
  return {'NOT_HELD', 'Task ' .. task_id .. ' is not held by ' .. worker_id .. ' (status ' ..
    status .. ', held by ' .. holder .. ')'}
end

local final_status, idx_key, counter = 'completed', idx_completed_key, 'tasksCompleted'
if outcome == 'error' then
  final_status, idx_key, counter = 'failed', idx_failed_key, 'tasksFailed'
  redis.call('HSET', task_key, 'error', value)
else
  redis.call('HSET', task_key, 'result', value)
end
redis.call('HSET', task_key, 'status', final_status, 'completedAt', now_ms, 'updatedAt', now_ms)
redis.call('ZREM', held_key, task_id)
redis.call('ZREM', idx_in_progress_key, task_id)
redis.call('ZADD', idx_key, seq, task_id)
redis.call('HINCRBY', queue_metrics_key, final_status, 1)
count_finished(throughput_key, now_ms)
if redis.call('EXISTS', instance_key) == 1 then  -- never recreate an unregistered instance
  redis.call('HINCRBY', instance_key, counter, 1)
end

local snapshot = task_snapshot(task_key)
append_event(events_key, maxlen, final_status, task_id, worker_id, now_ms, snapshot)
return {'OK', snapshot}
