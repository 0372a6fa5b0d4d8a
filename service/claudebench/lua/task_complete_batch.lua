-- TASK_COMPLETE_BATCH: finish many held tasks at once, all or none: every completion is checked
-- first, and one refusal refuses the batch with nothing written. A completion the same worker
-- already made with the same outcome and value is a replay (its stored task is returned, nothing is
-- written for it); with another outcome it is refused (ALREADY_FINISHED).
--
-- KEYS[1] idx_in_progress  cb:tasks:status:in_progress   ZSET    status index
-- KEYS[2] idx_completed    cb:tasks:status:completed     ZSET    status index
-- KEYS[3] idx_failed       cb:tasks:status:failed        ZSET    status index
-- KEYS[4] events           cb:stream:tasks               STREAM  task events
-- KEYS[5] queue_metrics    cb:metrics:queues             HASH    completed/failed counters
-- KEYS[6] throughput       cb:metrics:throughput         HASH    finishes per second
-- KEYS[7] idx_scheduled    cb:tasks:status:scheduled     ZSET    status index
-- KEYS[8] due              cb:queue:tasks:due            ZSET    scheduled tasks by run_at
-- KEYS[9] finished_completed cb:tasks:finished:completed ZSET  completed tasks by finish time
-- KEYS[10] finished_failed cb:tasks:finished:failed      ZSET    failed tasks by finish time
-- KEYS[11] counts          cb:queues:counts              HASH    per-queue status counters
-- KEYS[12..] items          cb:task:{id}, cb:queue:instance:{worker}, cb:instance:{worker}
--                          triples, one per completion, in order
--
-- ARGV[1] now_ms           integer  epoch milliseconds
-- ARGV[2] maxlen           integer  approximate retention of the event stream
-- ARGV[3..] items          strings  per completion: task_id, worker_id, outcome (result|error), value,
--                                   retry_at (an error's retry time in epoch ms, 0 = FAILED)
--
-- Returns {code, payload}:
--   OK                payload = JSON array of the task snapshots, in order
--   NOT_FOUND         payload = message; nothing was written
--   ALREADY_FINISHED  payload = message; nothing was written
--   NOT_HELD          payload = message; nothing was written
--
-- Events: COMPLETED, FAILED or SCHEDULED (a retry), one per task finished by this call
-- include: lib/task.lua
-- include: lib/queue.lua
-- include: lib/metrics.lua
-- include: lib/completion.lua

local k = {idx_in_progress = KEYS[1], idx_completed = KEYS[2], idx_failed = KEYS[3],
  events = KEYS[4], queue_metrics = KEYS[5], throughput = KEYS[6], idx_scheduled = KEYS[7],
  due = KEYS[8], finished_completed = KEYS[9], finished_failed = KEYS[10], counts = KEYS[11]}
local now_ms, maxlen = ARGV[1], ARGV[2]

local items = {}
for i = 12, #KEYS, 3 do
  local a = 3 + 5 * (i - 12) / 3
  local item = {task_key = KEYS[i], held_key = KEYS[i + 1], instance_key = KEYS[i + 2],
    id = ARGV[a], worker = ARGV[a + 1], outcome = ARGV[a + 2], value = ARGV[a + 3],
    retry_at = ARGV[a + 4]}
  local refusal = completion_refusal(item.task_key, item.id, item.worker, item.outcome, item.value,
    now_ms)
  if refusal == 'replay' then
    item.replay = true
  elseif refusal then
    refusal[2] = refusal[2] .. '; no completion of the batch was recorded'
    return refusal
  end
  items[#items + 1] = item
end

local snapshots = {}
for _, item in ipairs(items) do
  if item.replay then
    snapshots[#snapshots + 1] = task_snapshot(item.task_key)
  else
    snapshots[#snapshots + 1] = finish_task(item.task_key, item.held_key, item.instance_key,
      item.id, item.worker, item.outcome, item.value, now_ms, maxlen, k, item.retry_at)
  end
end
return {'OK', '[' .. table.concat(snapshots, ',') .. ']'}
