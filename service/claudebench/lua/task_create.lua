-- TASK_CREATE: create a task, queue it as pending in its queue and append a CREATED event.
--
-- KEYS[1] task            cb:task:{id}               HASH    the new task record
-- KEYS[2] pending         cb:queue:{q}:pending       ZSET    the queue's pending tasks, score = pending_score(priority, seq)
-- KEYS[3] all_tasks       cb:tasks:all               ZSET    every task, score = seq
-- KEYS[4] idx_pending     cb:tasks:status:pending    ZSET    pending tasks, score = seq
-- KEYS[5] events          cb:stream:tasks            STREAM  task events
-- KEYS[6] seq             cb:seq:tasks               STRING  creation counter (orders FIFO within a priority)
-- KEYS[7] backlog         cb:queue:{q}:backlog       ZSET    fairness: tasks waiting for their key's turn
-- KEYS[8] fair            cb:queue:{q}:fair          HASH    fairness key -> its tasks in the pending ZSET
-- KEYS[9] queue_all       cb:queue:{q}:all           ZSET    the queue's tasks, score = seq
-- KEYS[10] queues         cb:queues                  ZSET    queue registry (name, first use ms)
--
-- ARGV[1] task_id         string   unique id, validated by the caller
-- ARGV[2] text            string   1..500 characters
-- ARGV[3] priority        integer  0..100
-- ARGV[4] now_ms          integer  epoch milliseconds
-- ARGV[5] maxlen          integer  approximate retention of the event stream
-- ARGV[6] queue           string   the queue's name (validated by the caller)
-- ARGV[7..] metadata      pairs    key, JSON-encoded value, key, JSON-encoded value, ...
--
-- Returns {code, payload}:
--   OK              payload = the task snapshot (JSON object of the task hash)
--   ALREADY_EXISTS  payload = message; nothing was written
--
-- Events: CREATED
-- include: lib/task.lua
-- include: lib/queue.lua

local task_key = KEYS[1]
local k = {all_tasks = KEYS[3], idx_pending = KEYS[4], events = KEYS[5], seq = KEYS[6], queues = KEYS[10]}
local task_id, text, priority, now_ms, maxlen = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local q = {name = ARGV[6], pending = KEYS[2], backlog = KEYS[7], fair = KEYS[8], all = KEYS[9]}

if redis.call('EXISTS', task_key) == 1 then
  return {'ALREADY_EXISTS', 'Task ' .. task_id .. ' already exists'}
end
local metadata = {}
for i = 7, #ARGV do
  metadata[#metadata + 1] = ARGV[i]
end
return {'OK', insert_task(q, task_key, task_id, text, priority, now_ms, metadata, maxlen, k)}
