-- AUTO_ASSIGN_TASKS: at a worker's registration, hand it pending tasks of its queues up to its free
-- capacity, highest priority first. The same atomic step as TASK_CLAIM (candidates passed as
-- declared keys, taken only if still pending and not denied; paused queues, concurrency caps and
-- rate limits respected), with ASSIGNED events and no refusal when full.
--
-- KEYS[1] instance         cb:instance:{worker}          HASH    the worker's registration
-- KEYS[2] held             cb:queue:instance:{worker}    ZSET    tasks the worker holds
-- KEYS[3] idx_pending      cb:tasks:status:pending       ZSET    pending index
-- KEYS[4] idx_in_progress  cb:tasks:status:in_progress   ZSET    in-progress index
-- KEYS[5] events           cb:stream:tasks               STREAM  task events
-- KEYS[6] queue_metrics    cb:metrics:queues             HASH    wait-time counters
-- KEYS[7] seq              cb:seq:tasks                  STRING  creation counter (fair turns)
-- KEYS[8] counts           cb:queues:counts              HASH    per-queue status counters
-- KEYS[9] leases           cb:queue:tasks:leases         ZSET    in-progress tasks by lease deadline
-- KEYS[10..] queues         per queue (nqueues): cb:queue:{q}:pending, :backlog, :fair, :config,
--                          :rate; then the candidates' cb:task:{id} HASHes, queue by queue
--
-- ARGV[1] worker_id        string
-- ARGV[2] now_ms           integer  epoch milliseconds
-- ARGV[3] max_tasks        integer  the most tasks to hand over in this call
-- ARGV[4] maxlen           integer  approximate retention of the event stream
-- ARGV[5] head_size        integer  how many ids of each queue's head the reply carries
-- ARGV[6] nqueues          integer  1..100: the worker's registered queues
-- ARGV[7..] queues         strings  per queue: name, candidate count; then the candidate ids
--
-- Returns {code, payload}:
--   OK              payload = as TASK_CLAIM's
--   NOT_FOUND       payload = message; the worker is not registered
--   QUEUES_CHANGED  payload = the worker's registered queues (JSON array): call again with them
--
-- Events: ASSIGNED (one per task handed over)
-- include: lib/task.lua
-- include: lib/queue.lua

local k = {held = KEYS[2], idx_pending = KEYS[3], idx_in_progress = KEYS[4], events = KEYS[5],
  queue_metrics = KEYS[6], seq = KEYS[7], counts = KEYS[8], leases = KEYS[9]}
local worker_id, now_ms, max_tasks, maxlen, head_size =
  ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4], tonumber(ARGV[5])
local queues = claim_queues(10, 7, tonumber(ARGV[6]))

local capacity = redis.call('HGET', KEYS[1], 'maxTasks')
if not capacity then
  return {'NOT_FOUND', 'Instance ' .. worker_id .. ' is not registered'}
end
local refusal = queues_changed(KEYS[1], queues)
if refusal then
  return refusal
end
local free = tonumber(capacity) - redis.call('ZCARD', k.held)
if free <= 0 then
  return queues_claim_reply(queues, {}, 0,
    {stale = 0, denied = 0, behind = false, more = false, open_at = 0}, head_size)
end
local taken, r =
  claim_from_queues(queues, worker_id, math.min(max_tasks, free), now_ms, maxlen, 'assigned', k)
return queues_claim_reply(queues, taken, free - #taken, r, head_size)
