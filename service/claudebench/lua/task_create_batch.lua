-- TASK_CREATE_BATCH: create many tasks at once, all or none: if any id is taken, nothing is
-- written. One CREATED event per task (SCHEDULED for one created for later), in the order given.
--
-- KEYS[1] pending          cb:queue:tasks:pending     ZSET    pending queue
-- KEYS[2] all_tasks        cb:tasks:all               ZSET    every task, score = seq
-- KEYS[3] idx_pending      cb:tasks:status:pending    ZSET    pending tasks, score = seq
-- KEYS[4] events           cb:stream:tasks            STREAM  task events
-- KEYS[5] seq              cb:seq:tasks               STRING  creation counter
-- KEYS[6] due              cb:queue:tasks:due         ZSET    scheduled tasks, score = run_at (ms)
-- KEYS[7] idx_scheduled    cb:tasks:status:scheduled  ZSET    scheduled tasks, score = seq
-- KEYS[8..] tasks          cb:task:{id}               HASH    the new tasks, in order
--
-- ARGV[1] now_ms           integer  epoch milliseconds
-- ARGV[2] maxlen           integer  approximate retention of the event stream
-- ARGV[3..] items          strings  per task, in the order of KEYS[8..]: id, text, priority,
--                                   run_at (0 = now), timeout_ms (0 = none), max_attempts, retry
--                                   (policy JSON or ''), n (metadata pairs), then n key, JSON-value
--                                   pairs
--
-- Returns {code, payload}:
--   OK              payload = JSON array of the task snapshots, in order
--   ALREADY_EXISTS  payload = message naming the first taken id; nothing was written
--
-- Events: CREATED or SCHEDULED (one per task)
-- include: lib/task.lua

local k = {pending = KEYS[1], all_tasks = KEYS[2], idx_pending = KEYS[3], events = KEYS[4], seq = KEYS[5],
  due = KEYS[6], idx_scheduled = KEYS[7]}
local now_ms, maxlen = ARGV[1], ARGV[2]

-- Parse every item first; refuse before writing anything.
local items, cursor = {}, 3
for i = 8, #KEYS do
  local n = tonumber(ARGV[cursor + 7])
  local metadata = {}
  for j = 1, 2 * n do
    metadata[j] = ARGV[cursor + 7 + j]
  end
  items[#items + 1] = {key = KEYS[i], id = ARGV[cursor], text = ARGV[cursor + 1],
    priority = ARGV[cursor + 2], metadata = metadata, extra = {run_at = ARGV[cursor + 3],
      fields = lifecycle_fields(ARGV[cursor + 4], ARGV[cursor + 5], ARGV[cursor + 6])}}
  cursor = cursor + 8 + 2 * n
  if redis.call('EXISTS', KEYS[i]) == 1 then
    return {'ALREADY_EXISTS', 'Task ' .. items[#items].id .. ' already exists; no task of the batch was created'}
  end
end

local snapshots = {}
for _, item in ipairs(items) do
  snapshots[#snapshots + 1] =
    insert_task(item.key, item.id, item.text, item.priority, now_ms, item.metadata, maxlen, k, item.extra)
end
return {'OK', '[' .. table.concat(snapshots, ',') .. ']'}
