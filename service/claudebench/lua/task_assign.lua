-- TASK_ASSIGN: hand one pending task to a chosen live instance, within its capacity.
--
-- KEYS[1] task             cb:task:{id}                  HASH    the task
-- KEYS[2] instance         cb:instance:{instance}        HASH    the target's registration
-- KEYS[3] held             cb:queue:instance:{instance}  ZSET    tasks the target holds, score = seq
-- KEYS[4] pending          cb:queue:{q}:pending          ZSET    the task's queue's pending tasks
-- KEYS[5] idx_pending      cb:tasks:status:pending       ZSET    pending index
-- KEYS[6] idx_in_progress  cb:tasks:status:in_progress   ZSET    in-progress index
-- KEYS[7] events           cb:stream:tasks               STREAM  task events
-- KEYS[8] queue_metrics    cb:metrics:queues             HASH    wait-time counters
-- KEYS[9] leases           cb:queue:tasks:leases         ZSET    in-progress tasks by lease deadline
-- KEYS[10] backlog         cb:queue:{q}:backlog          ZSET    fairness backlog of the queue
-- KEYS[11] fair            cb:queue:{q}:fair             HASH    fairness turns of the queue
-- KEYS[12] config          cb:queue:{q}:config           HASH    the queue's settings (concurrency cap)
-- KEYS[13] seq             cb:seq:tasks                  STRING  creation counter (fair turns)
-- KEYS[14] counts          cb:queues:counts              HASH    per-queue status counters
--
-- ARGV[1] task_id          string
-- ARGV[2] instance_id      string
-- ARGV[3] now_ms           integer  epoch milliseconds
-- ARGV[4] ttl_ms           integer  liveness TTL
-- ARGV[5] maxlen           integer  approximate retention of the event stream
-- ARGV[6] queue            string   the task's queue as the caller believes it
--
-- Returns {code, payload}:
--   OK                       payload = task snapshot; also when the task is already held by this
--                            instance (a retry), then without a second event
--   NOT_FOUND                payload = message
--   INSTANCE_NOT_REGISTERED  payload = message
--   INSTANCE_OFFLINE         payload = message
--   NOT_PENDING              payload = message (names the current status and holder)
--   DENIED                   payload = message; the task's deny list names the instance
--   AT_CAPACITY              payload = message (the instance, or the queue's concurrency cap)
--   WRONG_QUEUE              payload = the task's queue: call again with its keys
--
-- Events: ASSIGNED
-- include: lib/task.lua
-- include: lib/queue.lua

local task_key, instance_key = KEYS[1], KEYS[2]
local k = {held = KEYS[3], idx_pending = KEYS[5], idx_in_progress = KEYS[6],
  events = KEYS[7], queue_metrics = KEYS[8], leases = KEYS[9], seq = KEYS[13], counts = KEYS[14]}
local task_id, instance_id, now_ms, ttl_ms, maxlen = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local q = {name = ARGV[6], pending = KEYS[4], backlog = KEYS[10], fair = KEYS[11], config = KEYS[12]}

local wrong = wrong_queue(task_key, q.name)
if wrong then
  return wrong
end

local task = redis.call('HMGET', task_key, 'status', 'assignedTo', 'deny')
local status, assigned_to, deny = task[1], task[2], task[3]
if not status then
  return {'NOT_FOUND', 'Task ' .. task_id .. ' does not exist'}
end
local capacity, refusal = live_instance_capacity(instance_key, instance_id, now_ms, ttl_ms)
if not capacity then
  return refusal
end
if status == 'in_progress' and assigned_to == instance_id then
  return {'OK', task_snapshot(task_key)}
end
if status ~= 'pending' then
  local holder = ''
  if assigned_to and assigned_to ~= '' then
    holder = ', assigned to ' .. assigned_to
  end
  return {'NOT_PENDING', 'Task not pending: ' .. task_id .. ' is ' .. status .. holder}
end
if json_list_contains(deny, instance_id) then
  return {'DENIED', 'Task ' .. task_id .. ' may not be assigned to ' .. instance_id ..
    ': the instance is on its deny list'}
end
if redis.call('ZCARD', k.held) >= capacity then
  return {'AT_CAPACITY', 'Instance at capacity: ' .. instance_id .. ' already holds ' .. capacity ..
    ' tasks'}
end

local limit = tonumber(redis.call('HGET', q.config, 'concurrencyLimit') or '0')
if limit > 0 and queue_in_progress(k.counts, k.idx_in_progress, q.name) >= limit then
  return {'AT_CAPACITY', 'Queue ' .. q.name .. ' at its concurrency limit: ' .. limit ..
    ' tasks in progress'}
end

dequeue(q, k.seq, task_key, task_id)
hand_over(task_key, task_id, instance_id, now_ms, k)
count_status(k.counts, q.name, 'in_progress', 1)
local snapshot = task_snapshot(task_key)
append_event(k.events, maxlen, 'assigned', task_id, instance_id, now_ms, snapshot)
return {'OK', snapshot}
