-- TASK_COMPLETE: the worker that holds a task finishes it with a result (COMPLETED) or an error
-- (FAILED; or SCHEDULED for a retry when the caller passes a retry_at: the task's retry policy has
-- attempts left). A retry by the same worker with the same outcome returns the stored task with no
-- second event; another outcome is refused.
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
-- KEYS[10] idx_scheduled   cb:tasks:status:scheduled     ZSET    status index
-- KEYS[11] due             cb:queue:tasks:due            ZSET    scheduled tasks by run_at
-- KEYS[12] finished_completed cb:tasks:finished:completed ZSET  completed tasks by finish time
-- KEYS[13] finished_failed cb:tasks:finished:failed      ZSET    failed tasks by finish time
-- KEYS[14] counts          cb:queues:counts              HASH    per-queue status counters
--
-- ARGV[1] task_id          string
-- ARGV[2] worker_id        string   must be the holder
-- ARGV[3] now_ms           integer  epoch milliseconds
-- ARGV[4] maxlen           integer  approximate retention of the event stream
-- ARGV[5] outcome          string   result|error
-- ARGV[6] value            string   the result as JSON text, or the error message
-- ARGV[7] retry_at         integer  with an error: epoch ms of the retry (SCHEDULED); 0 = FAILED
--
-- Returns {code, payload}:
--   OK                payload = task snapshot (first completion, or the same worker's retry of it
--                     with the same outcome and value)
--   NOT_FOUND         payload = message
--   ALREADY_FINISHED  payload = message; finished by another worker, or by this one with another
--                     outcome or value
--   NOT_HELD          payload = message; the task is not in progress with this worker (the message
--                     says when its lease expired or it was cancelled)
--
-- Events: COMPLETED, FAILED, or SCHEDULED (an error with a retry)
-- include: lib/task.lua
-- include: lib/queue.lua
-- include: lib/metrics.lua
-- include: lib/completion.lua

local task_key, held_key, instance_key = KEYS[1], KEYS[2], KEYS[9]
local k = {idx_in_progress = KEYS[3], idx_completed = KEYS[4], idx_failed = KEYS[5],
  events = KEYS[6], queue_metrics = KEYS[7], throughput = KEYS[8], idx_scheduled = KEYS[10],
  due = KEYS[11], finished_completed = KEYS[12], finished_failed = KEYS[13], counts = KEYS[14]}
local task_id, worker_id, now_ms, maxlen, outcome, value =
  ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]

local refusal = completion_refusal(task_key, task_id, worker_id, outcome, value, now_ms)
if refusal == 'replay' then
  return {'OK', task_snapshot(task_key)}
elseif refusal then
  return refusal
end
return {'OK', finish_task(task_key, held_key, instance_key, task_id, worker_id, outcome, value,
  now_ms, maxlen, k, ARGV[7])}
