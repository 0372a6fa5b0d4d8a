-- TASK_CLAIM: hand up to max_tasks pending tasks to a live worker, highest priority first.
--
-- The caller reads candidate ids from the head of the pending queue (ZRANGE) and passes their keys,
-- so every key is declared; this script takes only candidates that are still pending, so a candidate
-- another claimer took first is skipped (counted as stale) and exactly one worker ever wins a task.
--
-- KEYS[1] instance         cb:instance:{worker}          HASH    the worker's registration
-- KEYS[2] held             cb:queue:instance:{worker}    ZSET    tasks the worker holds, score = seq
-- KEYS[3] pending          cb:queue:tasks:pending        ZSET    pending queue
-- KEYS[4] idx_pending      cb:tasks:status:pending       ZSET    pending index
-- KEYS[5] idx_in_progress  cb:tasks:status:in_progress   ZSET    in-progress index
-- KEYS[6] events           cb:stream:tasks               STREAM  task events
-- KEYS[7..] candidates     cb:task:{id}                  HASH    candidate tasks, in queue order
--
-- ARGV[1] worker_id        string   the claiming instance
-- ARGV[2] now_ms           integer  epoch milliseconds
-- ARGV[3] ttl_ms           integer  liveness TTL: a worker silent for longer is offline
-- ARGV[4] max_tasks        integer  1..100, the most tasks to take in this call
-- ARGV[5] maxlen           integer  approximate retention of the event stream
-- ARGV[6..] candidate_ids  strings  the ids of KEYS[7..], same order
--
-- Returns {code, payload}:
--   OK                       payload = {"tasks":[snapshot...],"free":n,"stale":n,"denied":n}
--                            free = capacity left after this call, stale = candidates no longer
--                            pending, denied = candidates whose deny list names the worker
--   INSTANCE_NOT_REGISTERED  payload = message
--   INSTANCE_OFFLINE         payload = message
--   AT_CAPACITY              payload = message; the worker already holds max_tasks tasks
--
-- Events: CLAIMED (one per task taken)
-- include: lib/task.lua

local instance_key, held_key, pending_key, idx_pending_key, idx_in_progress_key, events_key =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local worker_id, now_ms, ttl_ms, max_tasks, maxlen =
  ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4]), ARGV[5]

local capacity, refusal = live_instance_capacity(instance_key, worker_id, now_ms, ttl_ms)
if not capacity then
  return refusal
end
local free = capacity - redis.call('ZCARD', held_key)
if free <= 0 then
  return {'AT_CAPACITY', 'Worker ' .. worker_id .. ' already holds ' .. capacity ..
    ' tasks, its max_tasks; complete or release one first'}
end

local want = math.min(max_tasks, free)
local taken, stale, denied = {}, 0, 0
for i = 7, #KEYS do
  if #taken >= want then
    break
  end
  local task_key, task_id = KEYS[i], ARGV[i - 1]
  if not redis.call('ZSCORE', pending_key, task_id) then
    stale = stale + 1
  elseif json_list_contains(redis.call('HGET', task_key, 'deny'), worker_id) then
    denied = denied + 1
  else
    hand_over(task_key, task_id, worker_id, now_ms, pending_key, idx_pending_key,
      idx_in_progress_key, held_key)
    local snapshot = task_snapshot(task_key)
    append_event(events_key, maxlen, 'claimed', task_id, worker_id, now_ms, snapshot)
    taken[#taken + 1] = snapshot
  end
end

return {'OK', '{"tasks":[' .. table.concat(taken, ',') .. '],"free":' .. (free - #taken) ..
  ',"stale":' .. stale .. ',"denied":' .. denied .. '}'}
