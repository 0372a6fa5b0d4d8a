-- TASK_CREATE: create a task, queue it as pending and append a CREATED event.
--
-- KEYS[1] task            cb:task:{id}               HASH    the new task record
-- KEYS[2] pending         cb:queue:tasks:pending     ZSET    pending queue, score = pending_score(priority, seq)
-- KEYS[3] all_tasks       cb:tasks:all               ZSET    every task, score = seq
-- KEYS[4] idx_pending     cb:tasks:status:pending    ZSET    pending tasks, score = seq
-- KEYS[5] events          cb:stream:tasks            STREAM  task events
-- KEYS[6] seq             cb:seq:tasks               STRING  creation counter (orders FIFO within a priority)
--
-- ARGV[1] task_id         string   unique id, validated by the caller
-- ARGV[2] text            string   1..500 characters
-- ARGV[3] priority        integer  0..100
-- ARGV[4] now_ms          integer  epoch milliseconds
-- ARGV[5] maxlen          integer  approximate retention of the event stream
-- ARGV[6..] metadata      pairs    key, JSON-encoded value, key, JSON-encoded value, ...
--
-- Returns {code, payload}:
--   OK              payload = the task snapshot (JSON object of the task hash)
--   ALREADY_EXISTS  payload = message; nothing was written
--
-- Events: CREATED
-- include: lib/task.lua

local task_key, pending_key, all_key, idx_pending_key, events_key, seq_key =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local task_id, text, priority, now_ms, maxlen = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]

if redis.call('EXISTS', task_key) == 1 then
  return {'ALREADY_EXISTS', 'Task ' .. task_id .. ' already exists'}
end

local seq = redis.call('INCR', seq_key)
local fields = {'id', task_id, 'seq', seq, 'text', text, 'priority', priority, 'status', 'pending',
  'assignedTo', '', 'attempts', 0, 'createdAt', now_ms, 'updatedAt', now_ms}
for i = 6, #ARGV - 1, 2 do
  fields[#fields + 1] = 'm:' .. ARGV[i]
  fields[#fields + 1] = ARGV[i + 1]
end
redis.call('HSET', task_key, unpack(fields))
redis.call('ZADD', pending_key, pending_score(priority, seq), task_id)
redis.call('ZADD', all_key, seq, task_id)
redis.call('ZADD', idx_pending_key, seq, task_id)

local snapshot = task_snapshot(task_key)
append_event(events_key, maxlen, 'created', task_id, '', now_ms, snapshot)
return {'OK', snapshot}
