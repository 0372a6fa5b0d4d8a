-- TASK_PROMOTE_DUE: move due SCHEDULED tasks (run_at <= now) into the pending queue at their FIFO
-- place (pending_score(priority, seq)), one UPDATED event each (its snapshot says PENDING).
--
-- The caller passes candidate ids read just before from the due index (ZRANGE due -inf now BYSCORE
-- LIMIT 0 n) and their keys, so every key is declared and the batch is bounded; this script re-checks
-- each (still scheduled, still due), so two replicas promoting at once move each task once.
--
-- KEYS[1] due              cb:queue:tasks:due            ZSET    scheduled tasks, score = run_at (ms)
-- KEYS[2] pending          cb:queue:tasks:pending        ZSET    pending queue
-- KEYS[3] idx_scheduled    cb:tasks:status:scheduled     ZSET    status index
-- KEYS[4] idx_pending      cb:tasks:status:pending       ZSET    status index
-- KEYS[5] events           cb:stream:tasks               STREAM  task events
-- KEYS[6..] candidates     cb:task:{id}                  HASH    candidate tasks
--
-- ARGV[1] now_ms           integer  epoch milliseconds
-- ARGV[2] maxlen           integer  approximate retention of the event stream
-- ARGV[3..] candidate_ids  strings  the ids of KEYS[6..], same order
--
-- Returns {code, payload}:
--   OK   payload = {"promoted":n,"skipped":n,"next_due":ms|null}: skipped = candidates no longer
--        scheduled or not due (moved by another caller, deleted, cancelled, rescheduled); next_due =
--        the earliest run_at left in the due index
--
-- Events: UPDATED (one per task promoted)
-- include: lib/task.lua

local k = {due = KEYS[1], pending = KEYS[2], idx_scheduled = KEYS[3], idx_pending = KEYS[4],
  events = KEYS[5]}
local now_ms, maxlen = ARGV[1], ARGV[2]

local promoted, skipped = 0, 0
for i = 6, #KEYS do
  local task_key, task_id = KEYS[i], ARGV[i - 3]
  local run_at = redis.call('ZSCORE', k.due, task_id)
  if run_at and tonumber(run_at) <= tonumber(now_ms)
      and redis.call('HGET', task_key, 'status') == 'scheduled' then
    promote(task_key, task_id, now_ms, k)
    append_event(k.events, maxlen, 'updated', task_id, '', now_ms, task_snapshot(task_key))
    promoted = promoted + 1
  else
    skipped = skipped + 1
  end
end
return {'OK', '{"promoted":' .. promoted .. ',"skipped":' .. skipped .. ',"next_due":' ..
  next_due_json(k.due) .. '}'}
