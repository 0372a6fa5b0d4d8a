-- AUTO_ASSIGN_TASKS: at a worker's registration, hand it pending tasks up to its free capacity,
-- highest priority first. The same atomic step as TASK_CLAIM (candidates passed as declared keys,
-- taken only if still pending and not denied), with ASSIGNED events and no refusal when full.
--
-- KEYS[1] instance         cb:instance:{worker}          HASH    the worker's registration
-- KEYS[2] held             cb:queue:instance:{worker}    ZSET    tasks the worker holds
-- KEYS[3] pending          cb:queue:tasks:pending        ZSET    pending queue
-- KEYS[4] idx_pending      cb:tasks:status:pending       ZSET    pending index
-- KEYS[5] idx_in_progress  cb:tasks:status:in_progress   ZSET    in-progress index
-- KEYS[6] events           cb:stream:tasks               STREAM  task events
-- KEYS[7] queue_metrics    cb:metrics:queues             HASH    wait-time counters
-- KEYS[8] leases           cb:queue:tasks:leases         ZSET    in-progress tasks by lease deadline
-- KEYS[9..] candidates     cb:task:{id}                  HASH    candidate tasks, in queue order
--
-- ARGV[1] worker_id        string
-- ARGV[2] now_ms           integer  epoch milliseconds
-- ARGV[3] max_tasks        integer  the most tasks to hand over in this call
-- ARGV[4] maxlen           integer  approximate retention of the event stream
-- ARGV[5..] candidate_ids  strings  the ids of KEYS[9..], same order
--
-- Returns {code, payload}:
--   OK         payload = {"tasks":[snapshot...],"free":n,"stale":n,"denied":n,"behind":b,
--                        "pending":n,"head":[id...]} (as TASK_CLAIM's)
--   NOT_FOUND  payload = message; the worker is not registered
--
-- Events: ASSIGNED (one per task handed over)
-- include: lib/task.lua

local k = {held = KEYS[2], pending = KEYS[3], idx_pending = KEYS[4], idx_in_progress = KEYS[5],
  events = KEYS[6], queue_metrics = KEYS[7], leases = KEYS[8]}
local worker_id, now_ms, max_tasks, maxlen = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4]

local capacity = redis.call('HGET', KEYS[1], 'maxTasks')
if not capacity then
  return {'NOT_FOUND', 'Instance ' .. worker_id .. ' is not registered'}
end
local free = tonumber(capacity) - redis.call('ZCARD', k.held)
if free <= 0 then
  return claim_reply({}, 0, 0, 0, false, k)
end
local taken, stale, denied, behind =
  take_candidates(9, 5, worker_id, math.min(max_tasks, free), now_ms, maxlen, 'assigned', k)
return claim_reply(taken, free - #taken, stale, denied, behind, k)
