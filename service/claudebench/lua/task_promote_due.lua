-- TASK_PROMOTE_DUE: move due SCHEDULED tasks (run_at <= now) into the pending queue at their FIFO
-- place (pending_score(priority, seq)), one UPDATED event each (its snapshot says PENDING).
--
-- The caller passes candidate ids read just before from the due index (ZRANGE due -inf now BYSCORE
-- LIMIT 0 n) and their keys, so every key is declared and the batch is bounded; this script re-checks
-- each (still scheduled, still due), so two replicas promoting at once move each task once.
--
-- KEYS[1] due              cb:queue:tasks:due            ZSET    scheduled tasks, score = run_at (ms)
-- KEYS[2] counts           cb:queues:counts              HASH    per-queue status counters
-- KEYS[3] idx_scheduled    cb:tasks:status:scheduled     ZSET    status index
-- KEYS[4] idx_pending      cb:tasks:status:pending       ZSET    status index
-- KEYS[5] events           cb:stream:tasks               STREAM  task events
-- KEYS[6..] candidates     per candidate, 4 keys: cb:task:{id}, and its queue's
--                          cb:queue:{q}:pending, :backlog, :fair
--
-- ARGV[1] now_ms           integer  epoch milliseconds
-- ARGV[2] maxlen           integer  approximate retention of the event stream
-- ARGV[3..] candidates     strings  per candidate, in the order of KEYS[6..]: id, queue (as read)
--
-- Returns {code, payload}:
--   OK   payload = {"promoted":n,"skipped":n,"next_due":ms|null}: skipped = candidates no longer
--        scheduled or not due (moved by another caller, deleted, cancelled, rescheduled, created
--        again in another queue than the one read); next_due =
--        the earliest run_at left in the due index
--
-- Events: UPDATED (one per task promoted)
-- include: lib/task.lua
-- include: lib/queue.lua

local k = {due = KEYS[1], counts = KEYS[2], idx_scheduled = KEYS[3], idx_pending = KEYS[4],
  events = KEYS[5]}
local now_ms, maxlen = ARGV[1], ARGV[2]

local promoted, skipped = 0, 0
for i = 6, #KEYS, 4 do
  local a = 3 + (i - 6) / 2
  local task_key, task_id = KEYS[i], ARGV[a]
  local q = {name = ARGV[a + 1], pending = KEYS[i + 1], backlog = KEYS[i + 2], fair = KEYS[i + 3]}
  local run_at = redis.call('ZSCORE', k.due, task_id)
  if run_at and tonumber(run_at) <= tonumber(now_ms)
      and redis.call('HGET', task_key, 'status') == 'scheduled' and task_queue(task_key) == q.name then
    promote(q, task_key, task_id, now_ms, k)
    append_event(k.events, maxlen, 'updated', task_id, '', now_ms, task_snapshot(task_key))
    promoted = promoted + 1
  else
    skipped = skipped + 1
  end
end
return {'OK', '{"promoted":' .. promoted .. ',"skipped":' .. skipped .. ',"next_due":' ..
  next_due_json(k.due) .. '}'}
