-- TASK_CLAIM: hand up to max_tasks pending tasks of the worker's queues to a live worker: across
-- the queues highest priority first, then oldest (lowest pending score); within a queue strictly in
-- its order. A paused queue, or one at its concurrency cap or rate limit, hands out nothing.
--
-- The caller passes, per queue, candidate ids from the head of its pending ZSET (read with ZRANGE,
-- or the head a previous claim returned) and their keys, so every key is declared; this script
-- takes only candidates that are still pending, in queue order, so a candidate another claimer took
-- first is skipped (counted as stale) and exactly one worker ever wins a task.
--
-- KEYS[1] instance         cb:instance:{worker}          HASH    the worker's registration
-- KEYS[2] held             cb:queue:instance:{worker}    ZSET    tasks the worker holds, score = seq
-- KEYS[3] idx_pending      cb:tasks:status:pending       ZSET    pending index
-- KEYS[4] idx_in_progress  cb:tasks:status:in_progress   ZSET    in-progress index
-- KEYS[5] events           cb:stream:tasks               STREAM  task events
-- KEYS[6] queue_metrics    cb:metrics:queues             HASH    wait-time counters
-- KEYS[7] seq              cb:seq:tasks                  STRING  creation counter (fair turns)
-- KEYS[8] counts           cb:queues:counts              HASH    per-queue status counters
-- KEYS[9] due              cb:queue:tasks:due            ZSET    scheduled tasks (the reply's next_due)
-- KEYS[10] leases          cb:queue:tasks:leases         ZSET    in-progress tasks by lease deadline
-- KEYS[11..] queues         per queue (nqueues): cb:queue:{q}:pending, :backlog, :fair, :config,
--                          :rate; then the candidates' cb:task:{id} HASHes, queue by queue
--
-- ARGV[1] worker_id        string   the claiming instance
-- ARGV[2] now_ms           integer  epoch milliseconds
-- ARGV[3] ttl_ms           integer  liveness TTL: a worker silent for longer is offline
-- ARGV[4] max_tasks        integer  1..100, the most tasks to take in this call
-- ARGV[5] maxlen           integer  approximate retention of the event stream
-- ARGV[6] event_type       string   claimed (ClaimTask) or assigned (auto-assignment at Register)
-- ARGV[7] explicit         string   1 = the request named the queues (each must be registered),
--                                   0 = they are the worker's registered queues as the caller knew them
-- ARGV[8] head_size        integer  how many ids of each queue's head the reply carries
-- ARGV[9] nqueues          integer  1..100
-- ARGV[10..] queues        strings  per queue: name, candidate count; then the candidate ids
--
-- Returns {code, payload}:
--   OK                       payload = {"tasks":[snapshot...],"free":n,"stale":n,"denied":n,
--                            "behind":bool,"more":bool,"pending":n,"open_at":ms,
--                            "heads":{queue:[id...]},"next_due":ms|null}
--                            free = capacity left after this call, stale = candidates no longer
--                            pending, denied = candidates whose deny list names the worker,
--                            behind = stopped because a pending task not passed ranks before a
--                            queue's next candidate, more = a queue's candidates ran out while it
--                            has more pending tasks (pass more), pending = the queues' pending ZSETs' length, open_at =
--                            when the first queue closed by its rate limit opens again (0 = none),
--                            heads = each queue's first head_size ids (the next claim's candidates),
--                            next_due = the earliest run_at of a scheduled task (null = none)
--   INSTANCE_NOT_REGISTERED  payload = message
--   INSTANCE_OFFLINE         payload = message
--   AT_CAPACITY              payload = message; the worker already holds max_tasks tasks
--   NOT_SUBSCRIBED           payload = message; a named queue is not one the worker registered for
--   QUEUES_CHANGED           payload = the worker's registered queues (JSON array): call again with them
--
-- Events: CLAIMED or ASSIGNED (event_type), one per task taken
-- include: lib/task.lua
-- include: lib/queue.lua

local k = {held = KEYS[2], idx_pending = KEYS[3], idx_in_progress = KEYS[4], events = KEYS[5],
  queue_metrics = KEYS[6], seq = KEYS[7], counts = KEYS[8], due = KEYS[9], leases = KEYS[10]}
local instance_key = KEYS[1]
local worker_id, now_ms, ttl_ms, max_tasks, maxlen, event_type, explicit, head_size =
  ARGV[1], tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4]), ARGV[5], ARGV[6], ARGV[7], tonumber(ARGV[8])
local queues = claim_queues(11, 10, tonumber(ARGV[9]))

local capacity, refusal = live_instance_capacity(instance_key, worker_id, now_ms, ttl_ms)
if not capacity then
  return refusal
end
if explicit == '1' then
  refusal = unsubscribed(instance_key, worker_id, queues)
else
  refusal = queues_changed(instance_key, queues)
end
if refusal then
  return refusal
end
local free = capacity - redis.call('ZCARD', k.held)
if free <= 0 then
  return {'AT_CAPACITY', 'Worker ' .. worker_id .. ' already holds ' .. capacity ..
    ' tasks, its max_tasks; complete or release one first'}
end

local taken, r =
  claim_from_queues(queues, worker_id, math.min(max_tasks, free), now_ms, maxlen, event_type, k)
return queues_claim_reply(queues, taken, free - #taken, r, head_size, k.due)
