-- TASK_CREATE_BATCH: create many pending tasks at once, all or none: if any id is taken, nothing
-- is written. One CREATED event per task, in the order given.
--
-- KEYS[1] all_tasks        cb:tasks:all               ZSET    every task, score = seq
-- KEYS[2] idx_pending      cb:tasks:status:pending    ZSET    pending tasks, score = seq
-- KEYS[3] events           cb:stream:tasks            STREAM  task events
-- KEYS[4] seq              cb:seq:tasks               STRING  creation counter
-- KEYS[5] queues           cb:queues                  ZSET    queue registry (name, first use ms)
-- KEYS[6..] tasks          cb:task:{id} and its queue's keys, 5 per task in order: the task hash,
--                          cb:queue:{q}:pending, cb:queue:{q}:backlog, cb:queue:{q}:fair,
--                          cb:queue:{q}:all
--
-- ARGV[1] now_ms           integer  epoch milliseconds
-- ARGV[2] maxlen           integer  approximate retention of the event stream
-- ARGV[3..] items          strings  per task, in the order of KEYS[6..]: id, text, priority, queue,
--                                   n (metadata pairs), then n key, JSON-value pairs
--
-- Returns {code, payload}:
--   OK              payload = JSON array of the task snapshots, in order
--   ALREADY_EXISTS  payload = message naming the first taken id; nothing was written
--
-- Events: CREATED (one per task)
-- include: lib/task.lua
-- include: lib/queue.lua

local k = {all_tasks = KEYS[1], idx_pending = KEYS[2], events = KEYS[3], seq = KEYS[4], queues = KEYS[5]}
local now_ms, maxlen = ARGV[1], ARGV[2]

-- Parse every item first; refuse before writing anything.
local items, cursor = {}, 3
for i = 6, #KEYS, 5 do
  local n = tonumber(ARGV[cursor + 4])
  local metadata = {}
  for j = 1, 2 * n do
    metadata[j] = ARGV[cursor + 4 + j]
  end
  items[#items + 1] = {key = KEYS[i], id = ARGV[cursor], text = ARGV[cursor + 1],
    priority = ARGV[cursor + 2], metadata = metadata,
    q = {name = ARGV[cursor + 3], pending = KEYS[i + 1], backlog = KEYS[i + 2], fair = KEYS[i + 3],
      all = KEYS[i + 4]}}
  cursor = cursor + 5 + 2 * n
  if redis.call('EXISTS', KEYS[i]) == 1 then
    return {'ALREADY_EXISTS', 'Task ' .. items[#items].id .. ' already exists; no task of the batch was created'}
  end
end

local snapshots = {}
for _, item in ipairs(items) do
  snapshots[#snapshots + 1] =
    insert_task(item.q, item.key, item.id, item.text, item.priority, now_ms, item.metadata, maxlen, k)
end
return {'OK', '[' .. table.concat(snapshots, ',') .. ']'}
