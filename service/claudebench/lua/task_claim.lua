-- TASK_CLAIM: hand up to max_tasks pending tasks to a live worker, highest priority first.
--
-- The caller passes candidate ids from the head of the pending queue (read with ZRANGE, or the head
-- a previous claim returned) and their keys, so every key is declared; this script takes only
-- candidates that are still pending, in queue order, so a candidate another claimer took first is
-- skipped (counted as stale) and exactly one worker ever wins a task.
--
-- KEYS[1] instance         cb:instance:{worker}          HASH    the worker's registration
-- KEYS[2] held             cb:queue:instance:{worker}    ZSET    tasks the worker holds, score = seq
-- KEYS[3] pending          cb:queue:tasks:pending        ZSET    pending queue
-- KEYS[4] idx_pending      cb:tasks:status:pending       ZSET    pending index
-- KEYS[5] idx_in_progress  cb:tasks:status:in_progress   ZSET    in-progress index
-- KEYS[6] events           cb:stream:tasks               STREAM  task events
-- KEYS[7] queue_metrics    cb:metrics:queues             HASH    wait-time counters
-- KEYS[8] due              cb:queue:tasks:due            ZSET    scheduled tasks (read: next_due)
-- KEYS[9] leases           cb:queue:tasks:leases         ZSET    in-progress tasks by lease deadline
-- KEYS[10..] candidates    cb:task:{id}                  HASH    candidate tasks, in queue order
--
-- ARGV[1] worker_id        string   the claiming instance
-- ARGV[2] now_ms           integer  epoch milliseconds
-- ARGV[3] ttl_ms           integer  liveness TTL: a worker silent for longer is offline
-- ARGV[4] max_tasks        integer  1..100, the most tasks to take in this call
-- ARGV[5] maxlen           integer  approximate retention of the event stream
-- ARGV[6] event_type       string   claimed (ClaimTask) or assigned (auto-assignment at Register)
-- ARGV[7..] candidate_ids  strings  the ids of KEYS[10..], same order
--
-- Returns {code, payload}:
--   OK                       payload = {"tasks":[snapshot...],"free":n,"stale":n,"denied":n,
--                            "behind":bool,"pending":n,"head":[id...],"next_due":ms|null}
--                            free = capacity left after this call, stale = candidates no longer
--                            pending, denied = candidates whose deny list names the worker,
--                            behind = stopped because a task not among the candidates ranks first
--                            (tasks are only ever taken in queue order), pending = queue length,
--                            head = the first 64 pending ids (the next claim's candidates),
--                            next_due = the earliest run_at of a scheduled task (the caller
--                            promotes due tasks, TASK_PROMOTE_DUE, before a claim at or after it)
--   INSTANCE_NOT_REGISTERED  payload = message
--   INSTANCE_OFFLINE         payload = message
--   AT_CAPACITY              payload = message; the worker already holds max_tasks tasks
--
-- Events: CLAIMED or ASSIGNED (event_type), one per task taken
-- include: lib/task.lua

local k = {held = KEYS[2], pending = KEYS[3], idx_pending = KEYS[4], idx_in_progress = KEYS[5],
  events = KEYS[6], queue_metrics = KEYS[7], due = KEYS[8],
  leases = KEYS[9]}
local instance_key = KEYS[1]
local worker_id, now_ms, ttl_ms, max_tasks, maxlen, event_type =
  ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4]), ARGV[5], ARGV[6]

local capacity, refusal = live_instance_capacity(instance_key, worker_id, now_ms, ttl_ms)
if not capacity then
  return refusal
end
local free = capacity - redis.call('ZCARD', k.held)
if free <= 0 then
  return {'AT_CAPACITY', 'Worker ' .. worker_id .. ' already holds ' .. capacity ..
    ' tasks, its max_tasks; complete or release one first'}
end

local taken, stale, denied, behind =
  take_candidates(10, 7, worker_id, math.min(max_tasks, free), now_ms, maxlen, event_type, k)
return claim_reply(taken, free - #taken, stale, denied, behind, k)
