-- TASK_DELETE: remove a task and every index entry that names it. A task in progress is removed
-- only with force (its holder is then named in the DELETED event, so that it learns it lost it).
--
-- As in TASK_UPDATE the caller passes the holder it read (expected_assignee) so that the holder's
-- set is a declared key; a changed holder returns STALE without writing and the caller retries.
--
-- KEYS[1] task             cb:task:{id}                    HASH    the task
-- KEYS[2] pending          cb:queue:{q}:pending            ZSET    the task's queue's pending tasks
-- KEYS[3] all_tasks        cb:tasks:all                    ZSET    every task
-- KEYS[4] idx_pending      cb:tasks:status:pending         ZSET    status index
-- KEYS[5] idx_in_progress  cb:tasks:status:in_progress     ZSET    status index
-- KEYS[6] idx_completed    cb:tasks:status:completed       ZSET    status index
-- KEYS[7] idx_failed       cb:tasks:status:failed          ZSET    status index
-- KEYS[8] held             cb:queue:instance:{assignee}    ZSET    the expected holder's tasks
-- KEYS[9] events           cb:stream:tasks                 STREAM  task events
-- KEYS[10] idx_scheduled   cb:tasks:status:scheduled       ZSET    status index
-- KEYS[11] idx_cancelled   cb:tasks:status:cancelled       ZSET    status index
-- KEYS[12] due             cb:queue:tasks:due              ZSET    scheduled tasks by run_at
-- KEYS[13] finished_completed cb:tasks:finished:completed  ZSET    completed tasks by finish time
-- KEYS[14] finished_failed cb:tasks:finished:failed        ZSET    failed tasks by finish time
-- KEYS[15] finished_cancelled cb:tasks:finished:cancelled  ZSET    cancelled tasks by finish time
-- KEYS[16] backlog         cb:queue:{q}:backlog            ZSET    fairness backlog of the queue
-- KEYS[17] fair            cb:queue:{q}:fair               HASH    fairness turns of the queue
-- KEYS[18] seq             cb:seq:tasks                    STRING  creation counter (fair turns)
-- KEYS[19] counts          cb:queues:counts                HASH    per-queue status counters
-- KEYS[20] queue_all       cb:queue:{q}:all                ZSET    the queue's tasks
--
-- ARGV[1] task_id            string
-- ARGV[2] expected_assignee  string   assignedTo as the caller read it ('' = none)
-- ARGV[3] now_ms             integer  epoch milliseconds
-- ARGV[4] maxlen             integer  approximate retention of the event stream
-- ARGV[5] force              string   1 = delete even a task in progress, 0 = refuse that
-- ARGV[6] queue              string   the task's queue as the caller believes it
--
-- Returns {code, payload}:
--   OK                  payload = '{}'
--   NOT_FOUND           payload = message
--   STALE               payload = message; assignedTo differs from expected_assignee, nothing written
--   WRONG_QUEUE         payload = the task's queue: call again with its keys
--   INVALID_TRANSITION  payload = message; the task is in progress and force is 0, nothing written
--
-- Events: DELETED (without a task snapshot; instance_id = the holder a forced delete took it from)
-- include: lib/task.lua
-- include: lib/queue.lua

local task_key, pending_key, all_key, held_key, events_key = KEYS[1], KEYS[2], KEYS[3], KEYS[8], KEYS[9]
local task_id, expected_assignee, now_ms, maxlen, force = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local q = {name = ARGV[6], pending = pending_key, backlog = KEYS[16], fair = KEYS[17]}

local task = redis.call('HMGET', task_key, 'status', 'assignedTo')
local status, assigned_to = task[1], task[2] or ''
if not status then
  return {'NOT_FOUND', 'Task ' .. task_id .. ' does not exist'}
end
local wrong = wrong_queue(task_key, q.name)
if wrong then
  return wrong
end
if assigned_to ~= expected_assignee then
  return {'STALE', 'Task ' .. task_id .. ' changed holder while being deleted'}
end
local holder = ''
if status == 'in_progress' then
  if force ~= '1' then
    return {'INVALID_TRANSITION', 'Task ' .. task_id .. ' is in progress with ' .. assigned_to ..
      '; wait for it to finish, release it, or delete with force'}
  end
  holder = assigned_to
end

dequeue(q, KEYS[18], task_key, task_id)
count_status(KEYS[19], q.name, status, -1)
redis.call('ZREM', KEYS[20], task_id)
redis.call('ZREM', all_key, task_id)
for _, i in ipairs({4, 5, 6, 7, 10, 11, 12, 13, 14, 15}) do
  redis.call('ZREM', KEYS[i], task_id)
end
redis.call('ZREM', held_key, task_id)
redis.call('DEL', task_key)

append_event(events_key, maxlen, 'deleted', task_id, holder, now_ms, nil)
return {'OK', '{}'}
