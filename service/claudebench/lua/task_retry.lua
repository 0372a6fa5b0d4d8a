-- TASK_RETRY: send a FAILED or CANCELLED task back to PENDING at its original place in the queue
-- (RetryTask): error, result, holder, deny list and the record of who lost it are cleared; with
-- reset_attempts, attempts and failovers count from zero again. One UPDATED event (its snapshot
-- says PENDING).
--
-- KEYS[1] task             cb:task:{id}                  HASH    the task
-- KEYS[2] pending          cb:queue:{q}:pending          ZSET    the task's queue's pending tasks
-- KEYS[3] idx_pending      cb:tasks:status:pending       ZSET    status index
-- KEYS[4] idx_failed       cb:tasks:status:failed        ZSET    status index
-- KEYS[5] idx_cancelled    cb:tasks:status:cancelled     ZSET    status index
-- KEYS[6] events           cb:stream:tasks               STREAM  task events
-- KEYS[7] finished_failed  cb:tasks:finished:failed      ZSET    failed tasks by finish time
-- KEYS[8] finished_cancelled cb:tasks:finished:cancelled ZSET    cancelled tasks by finish time
-- KEYS[9] backlog          cb:queue:{q}:backlog          ZSET    fairness backlog of the queue
-- KEYS[10] fair            cb:queue:{q}:fair             HASH    fairness turns of the queue
-- KEYS[11] counts          cb:queues:counts              HASH    per-queue status counters
--
-- ARGV[1] task_id          string
-- ARGV[2] now_ms           integer  epoch milliseconds
-- ARGV[3] maxlen           integer  approximate retention of the event stream
-- ARGV[4] reset_attempts   string   1 = attempts and failovers back to 0, 0 = kept
-- ARGV[5] queue            string   the task's queue as the caller believes it
--
-- Returns {code, payload}:
--   OK                  payload = task snapshot (PENDING)
--   NOT_FOUND           payload = message
--   WRONG_QUEUE         payload = the task's queue: call again with its keys
--   INVALID_TRANSITION  payload = message naming the current status; nothing written
--
-- Events: UPDATED
-- include: lib/task.lua
-- include: lib/queue.lua

local task_key = KEYS[1]
local k = {pending = KEYS[2], idx_pending = KEYS[3], idx_failed = KEYS[4], idx_cancelled = KEYS[5],
  events = KEYS[6]}
local task_id, now_ms, maxlen, reset = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local q = {name = ARGV[5], pending = KEYS[2], backlog = KEYS[9], fair = KEYS[10]}

local task = redis.call('HMGET', task_key, 'status', 'seq', 'priority')
local status, seq, priority = task[1], task[2], task[3]
if not status then
  return {'NOT_FOUND', 'Task ' .. task_id .. ' does not exist'}
end
local wrong = wrong_queue(task_key, q.name)
if wrong then
  return wrong
end
if status ~= 'failed' and status ~= 'cancelled' then
  return {'INVALID_TRANSITION', 'Task ' .. task_id .. ' is ' .. status ..
    '; only a FAILED or CANCELLED task can be retried'}
end

local index_key, finished_key = k.idx_cancelled, KEYS[8]
if status == 'failed' then
  index_key, finished_key = k.idx_failed, KEYS[7]
end
redis.call('ZREM', index_key, task_id)
redis.call('ZREM', finished_key, task_id)
redis.call('ZADD', k.idx_pending, seq, task_id)
enqueue(q, task_key, task_id, priority, seq, true)
count_status(KEYS[11], q.name, status, -1)
redis.call('HDEL', task_key, 'error', 'result', 'completedAt', 'assignedAt', 'leaseDeadline', 'deny',
  'timedOutHolder', 'cancelledHolder', 'failedHolder', 'cancelReason', 'releaseReason')
redis.call('HSET', task_key, 'status', 'pending', 'assignedTo', '', 'updatedAt', now_ms)
if reset == '1' then
  redis.call('HSET', task_key, 'attempts', 0, 'failovers', 0)
end
local snapshot = task_snapshot(task_key)
append_event(k.events, maxlen, 'updated', task_id, '', now_ms, snapshot)
return {'OK', snapshot}
