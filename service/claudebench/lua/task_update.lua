-- TASK_UPDATE: change a task's text, priority, status and metadata (merged key by key) at once.
--
-- Status rules: a COMPLETED task keeps its status; only ClaimTask/AssignTask move a task into
-- IN_PROGRESS and only CompleteTask into COMPLETED or FAILED (with the holder's result or error);
-- PENDING (from IN_PROGRESS: the holder loses it; from FAILED or CANCELLED: a retry, error cleared;
-- from SCHEDULED: run now) puts it back in the pending queue at its original place. Only CreateTask
-- and retries make a task SCHEDULED, only CancelTask CANCELLED. Every index follows the status in this same script.
--
-- The holder's set can only be named by a caller that knows the holder, so the caller reads
-- assignedTo first and passes it as expected_assignee; if it changed meanwhile the script returns
-- STALE without writing and the caller retries.
--
-- KEYS[1] task             cb:task:{id}                    HASH    the task
-- KEYS[2] pending          cb:queue:{q}:pending            ZSET    the task's queue's pending tasks
-- KEYS[3] idx_pending      cb:tasks:status:pending         ZSET    status index
-- KEYS[4] idx_in_progress  cb:tasks:status:in_progress     ZSET    status index
-- KEYS[5] idx_completed    cb:tasks:status:completed       ZSET    status index
-- KEYS[6] idx_failed       cb:tasks:status:failed          ZSET    status index
-- KEYS[7] held             cb:queue:instance:{assignee}    ZSET    the expected holder's tasks
-- KEYS[8] events           cb:stream:tasks                 STREAM  task events
-- KEYS[9] idx_scheduled    cb:tasks:status:scheduled       ZSET    status index
-- KEYS[10] idx_cancelled   cb:tasks:status:cancelled       ZSET    status index
-- KEYS[11] due             cb:queue:tasks:due              ZSET    scheduled tasks by run_at
-- KEYS[12] finished_failed cb:tasks:finished:failed        ZSET    failed tasks by finish time
-- KEYS[13] finished_cancelled cb:tasks:finished:cancelled  ZSET    cancelled tasks by finish time
-- KEYS[14] backlog         cb:queue:{q}:backlog            ZSET    fairness backlog of the queue
-- KEYS[15] fair            cb:queue:{q}:fair               HASH    fairness turns of the queue
-- KEYS[16] seq             cb:seq:tasks                    STRING  creation counter (fair turns)
-- KEYS[17] counts          cb:queues:counts                HASH    per-queue status counters
--
-- ARGV[1] task_id            string
-- ARGV[2] now_ms             integer  epoch milliseconds
-- ARGV[3] maxlen             integer  approximate retention of the event stream
-- ARGV[4] expected_assignee  string   assignedTo as the caller read it ('' = none)
-- ARGV[5] text               string   new text, '' = unchanged
-- ARGV[6] priority           string   new priority 0..100, '' = unchanged
-- ARGV[7] status             string   a status ('pending' is the only one it may set), '' = unchanged
-- ARGV[8] queue              string   the task's queue as the caller believes it
-- ARGV[9..] metadata         pairs    key, JSON-encoded value, ... merged into the metadata
--
-- Returns {code, payload}:
--   OK                  payload = task snapshot
--   NOT_FOUND           payload = message
--   STALE               payload = message; assignedTo differs from expected_assignee, nothing written
--   INVALID_TRANSITION  payload = message; nothing written
--   WRONG_QUEUE         payload = the task's queue: call again with its keys
--
-- Events: UPDATED
-- include: lib/task.lua
-- include: lib/queue.lua

local task_key, pending_key, held_key, events_key = KEYS[1], KEYS[2], KEYS[7], KEYS[8]
local index_key = {pending = KEYS[3], in_progress = KEYS[4], completed = KEYS[5], failed = KEYS[6],
  scheduled = KEYS[9], cancelled = KEYS[10]}
local due_key = KEYS[11]
local finished_key = {failed = KEYS[12], cancelled = KEYS[13]}
local task_id, now_ms, maxlen, expected_assignee = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local new_text, new_priority, new_status = ARGV[5], ARGV[6], ARGV[7]
local q = {name = ARGV[8], pending = pending_key, backlog = KEYS[14], fair = KEYS[15]}
local seq_key, counts_key = KEYS[16], KEYS[17]

local task = redis.call('HMGET', task_key, 'status', 'assignedTo', 'seq', 'priority')
local status, assigned_to, seq, priority = task[1], task[2] or '', task[3], task[4]
if not status then
  return {'NOT_FOUND', 'Task ' .. task_id .. ' does not exist'}
end
local wrong = wrong_queue(task_key, q.name)
if wrong then
  return wrong
end
if assigned_to ~= expected_assignee then
  return {'STALE', 'Task ' .. task_id .. ' changed holder while being updated'}
end
if new_status ~= '' and new_status ~= status then
  if status == 'completed' then
    return {'INVALID_TRANSITION', 'Task ' .. task_id .. ' is completed; a completed task cannot change status'}
  end
  if new_status == 'in_progress' then
    return {'INVALID_TRANSITION', 'Task ' .. task_id .. ' is ' .. status ..
      '; only ClaimTask or AssignTask can put a task in progress'}
  end
  if new_status == 'scheduled' or new_status == 'cancelled' then
    return {'INVALID_TRANSITION', 'Task ' .. task_id .. ' is ' .. status .. '; only ' ..
      (new_status == 'scheduled' and 'CreateTask (run_at or delay) or a retry' or 'CancelTask') ..
      ' can make a task ' .. new_status}
  end
  if new_status ~= 'pending' then
    return {'INVALID_TRANSITION', 'Task ' .. task_id .. ' is ' .. status ..
      '; only CompleteTask can make a task ' .. new_status .. ' (its holder reports the outcome)'}
  end
end

local fields = {'updatedAt', now_ms}
if new_text ~= '' then
  fields[#fields + 1] = 'text'
  fields[#fields + 1] = new_text
end
if new_priority ~= '' then
  priority = new_priority
  fields[#fields + 1] = 'priority'
  fields[#fields + 1] = new_priority
end
for i = 9, #ARGV - 1, 2 do
  fields[#fields + 1] = 'm:' .. ARGV[i]
  fields[#fields + 1] = ARGV[i + 1]
end

local requeue_it = status == 'pending' and new_priority ~= '' and new_priority ~= task[4]
if new_status ~= '' and new_status ~= status then
  -- Leave the old place.
  redis.call('ZREM', index_key[status], task_id)
  if status == 'in_progress' then
    redis.call('ZREM', held_key, task_id)
  elseif status == 'scheduled' then
    redis.call('ZREM', due_key, task_id)
  elseif finished_key[status] then
    redis.call('ZREM', finished_key[status], task_id)
  end
  count_status(counts_key, q.name, status, -1)
  -- Back to pending (the only status UpdateTask may set).
  redis.call('ZADD', index_key.pending, seq, task_id)
  redis.call('HDEL', task_key, 'assignedAt', 'completedAt', 'error', 'result', 'runAt')
  fields[#fields + 1] = 'status'
  fields[#fields + 1] = 'pending'
  fields[#fields + 1] = 'assignedTo'
  fields[#fields + 1] = ''
  status = new_status
  requeue_it = true
end
if requeue_it then
  -- Into its queue when it came back to pending, at its new place when its priority changed.
  dequeue(q, seq_key, task_key, task_id)
  enqueue(q, task_key, task_id, priority, seq, true)
end
redis.call('HSET', task_key, unpack(fields))

local snapshot = task_snapshot(task_key)
append_event(events_key, maxlen, 'updated', task_id, '', now_ms, snapshot)
return {'OK', snapshot}
