-- TASK_CANCEL: cancel a PENDING, SCHEDULED or IN_PROGRESS task (CancelTask): CANCELLED at once, out
-- of the pending queue, the due index or its holder's held set. The holder of an IN_PROGRESS task
-- is named in the CANCELLED event (the dispatcher pushes it a `cancel`) and recorded
-- (cancelledHolder), so its ReportProgress answers cancelled = true and its CompleteTask is refused.
--
-- As in TASK_UPDATE the caller passes the holder it read (expected_assignee) so that the holder's
-- set is a declared key; a changed holder returns STALE without writing and the caller retries.
--
-- KEYS[1] task             cb:task:{id}                    HASH    the task
-- KEYS[2] pending          cb:queue:{q}:pending            ZSET    the task's queue's pending tasks
-- KEYS[3] due              cb:queue:tasks:due              ZSET    scheduled tasks by run_at
-- KEYS[4] idx_pending      cb:tasks:status:pending         ZSET    status index
-- KEYS[5] idx_scheduled    cb:tasks:status:scheduled       ZSET    status index
-- KEYS[6] idx_in_progress  cb:tasks:status:in_progress     ZSET    status index
-- KEYS[7] idx_cancelled    cb:tasks:status:cancelled       ZSET    status index
-- KEYS[8] held             cb:queue:instance:{assignee}    ZSET    the expected holder's tasks
-- KEYS[9] events           cb:stream:tasks                 STREAM  task events
-- KEYS[10] finished_cancelled cb:tasks:finished:cancelled  ZSET    cancelled tasks by finish time
-- KEYS[11] backlog         cb:queue:{q}:backlog            ZSET    fairness backlog of the queue
-- KEYS[12] fair            cb:queue:{q}:fair               HASH    fairness turns of the queue
-- KEYS[13] seq             cb:seq:tasks                    STRING  creation counter (fair turns)
-- KEYS[14] counts          cb:queues:counts                HASH    per-queue status counters
--
-- ARGV[1] task_id            string
-- ARGV[2] expected_assignee  string   assignedTo as the caller read it ('' = none)
-- ARGV[3] now_ms             integer  epoch milliseconds
-- ARGV[4] maxlen             integer  approximate retention of the event stream
-- ARGV[5] reason             string   why (cancelReason), may be ''
-- ARGV[6] queue            string   the task's queue as the caller believes it
--
-- Returns {code, payload}:
--   OK                  payload = task snapshot (CANCELLED)
--   NOT_FOUND           payload = message
--   WRONG_QUEUE          payload = the task's queue: call again with its keys
--   STALE               payload = message; assignedTo differs from expected_assignee, nothing written
--   INVALID_TRANSITION  payload = message naming the current status (COMPLETED, FAILED or
--                       CANCELLED); nothing written
--
-- Events: CANCELLED (instance_id = the holder of an IN_PROGRESS task, else '')
-- include: lib/task.lua
-- include: lib/queue.lua

local task_key, pending_key, due_key, held_key, events_key = KEYS[1], KEYS[2], KEYS[3], KEYS[8], KEYS[9]
local index_key = {pending = KEYS[4], scheduled = KEYS[5], in_progress = KEYS[6]}
local idx_cancelled = KEYS[7]
local task_id, expected_assignee, now_ms, maxlen, reason = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local q = {name = ARGV[6], pending = pending_key, backlog = KEYS[11], fair = KEYS[12]}

local task = redis.call('HMGET', task_key, 'status', 'assignedTo', 'seq')
local status, assigned_to, seq = task[1], task[2] or '', task[3]
if not status then
  return {'NOT_FOUND', 'Task ' .. task_id .. ' does not exist'}
end
local wrong = wrong_queue(task_key, q.name)
if wrong then
  return wrong
end
if not index_key[status] then
  return {'INVALID_TRANSITION', 'Task ' .. task_id .. ' is ' .. status ..
    '; only a PENDING, SCHEDULED or IN_PROGRESS task can be cancelled'}
end
if assigned_to ~= expected_assignee then
  return {'STALE', 'Task ' .. task_id .. ' changed holder while being cancelled'}
end

local holder = ''
redis.call('ZREM', index_key[status], task_id)
count_status(KEYS[14], q.name, status, -1)
count_status(KEYS[14], q.name, 'cancelled', 1)
if status == 'pending' then
  dequeue(q, KEYS[13], task_key, task_id)
elseif status == 'scheduled' then
  redis.call('ZREM', due_key, task_id)
else
  holder = assigned_to
  redis.call('ZREM', held_key, task_id)
  redis.call('HSET', task_key, 'cancelledHolder', holder)
end
redis.call('ZADD', idx_cancelled, seq, task_id)
redis.call('ZADD', KEYS[10], now_ms, task_id)
redis.call('HDEL', task_key, 'runAt', 'leaseDeadline', 'assignedAt')
redis.call('HSET', task_key, 'status', 'cancelled', 'assignedTo', '', 'cancelReason', reason,
  'completedAt', now_ms, 'updatedAt', now_ms)
local snapshot = task_snapshot(task_key)
append_event(events_key, maxlen, 'cancelled', task_id, holder, now_ms, snapshot)
return {'OK', snapshot}
