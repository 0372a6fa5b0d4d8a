-- TASK_CREATE_BATCH: create many tasks at once, all or none: if any id is taken, nothing is
-- written. Each task is PENDING in its queue (event CREATED), or SCHEDULED when its run_at is in the
-- future (event SCHEDULED), one event per task in the order given; each gets its lease and retry
-- policy (its own, else its queue's defaults, else the server's).
--
-- KEYS[1] all_tasks        cb:tasks:all               ZSET    every task, score = seq
-- KEYS[2] idx_pending      cb:tasks:status:pending    ZSET    pending tasks, score = seq
-- KEYS[3] events           cb:stream:tasks            STREAM  task events
-- KEYS[4] seq              cb:seq:tasks               STRING  creation counter
-- KEYS[5] queues           cb:queues                  ZSET    queue registry (name, first use ms)
-- KEYS[6] due              cb:queue:tasks:due         ZSET    scheduled tasks, score = run_at (ms)
-- KEYS[7] idx_scheduled    cb:tasks:status:scheduled  ZSET    scheduled tasks, score = seq
-- KEYS[8] counts           cb:queues:counts           HASH    per-queue status counters
-- KEYS[9..] tasks          cb:task:{id} and its queue's keys, 6 per task in order: the task hash,
--                          cb:queue:{q}:pending, :backlog, :fair, :all, :config
--
-- ARGV[1] now_ms           integer  epoch milliseconds
-- ARGV[2] maxlen           integer  approximate retention of the event stream
-- ARGV[3] default_timeout_ms integer the server's default lease (0 = none)
-- ARGV[4] default_max_attempts integer the server's default attempts (1 = no retry)
-- ARGV[5] default_retry    string   the server's default policy as JSON ('' = none)
-- ARGV[6..] items          strings  per task, in the order of KEYS[9..]: id, text, priority, queue,
--                                   run_at (0 = now), timeout_ms (0 = none, -1 = default),
--                                   max_attempts (-1 = default), retry (policy JSON or ''),
--                                   n (metadata pairs), then n key, JSON-value pairs
--
-- Returns {code, payload}:
--   OK              payload = JSON array of the task snapshots, in order
--   ALREADY_EXISTS  payload = message naming the first taken id; nothing was written
--
-- Events: CREATED or SCHEDULED (one per task)
-- include: lib/task.lua
-- include: lib/queue.lua

local k = {all_tasks = KEYS[1], idx_pending = KEYS[2], events = KEYS[3], seq = KEYS[4], queues = KEYS[5],
  due = KEYS[6], idx_scheduled = KEYS[7], counts = KEYS[8]}
local now_ms, maxlen = ARGV[1], ARGV[2]

-- Parse every item first; refuse before writing anything.
local items, cursor = {}, 6
for i = 9, #KEYS, 6 do
  local n = tonumber(ARGV[cursor + 8])
  local metadata = {}
  for j = 1, 2 * n do
    metadata[j] = ARGV[cursor + 8 + j]
  end
  local timeout, max_attempts, retry = task_defaults(KEYS[i + 5], ARGV[cursor + 5], ARGV[cursor + 6],
    ARGV[cursor + 7], ARGV[3], ARGV[4], ARGV[5])
  items[#items + 1] = {key = KEYS[i], id = ARGV[cursor], text = ARGV[cursor + 1],
    priority = ARGV[cursor + 2], metadata = metadata,
    q = {name = ARGV[cursor + 3], pending = KEYS[i + 1], backlog = KEYS[i + 2], fair = KEYS[i + 3],
      all = KEYS[i + 4]},
    extra = {run_at = ARGV[cursor + 4], fields = lifecycle_fields(timeout, max_attempts, retry)}}
  cursor = cursor + 9 + 2 * n
  if redis.call('EXISTS', KEYS[i]) == 1 then
    return {'ALREADY_EXISTS', 'Task ' .. items[#items].id .. ' already exists; no task of the batch was created'}
  end
end

local snapshots = {}
for _, item in ipairs(items) do
  snapshots[#snapshots + 1] = insert_task(item.q, item.key, item.id, item.text, item.priority, now_ms,
    item.metadata, maxlen, k, item.extra)
end
return {'OK', '[' .. table.concat(snapshots, ',') .. ']'}
