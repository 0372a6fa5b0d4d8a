-- TASK_EXPIRE_FINISHED: retention of finished tasks. Removes the given tasks of one finished status
-- (COMPLETED, FAILED or CANCELLED) that finished at or before cutoff_ms, or that are beyond the
-- newest `keep` of that status (the count cap), with every index entry that names them; one EXPIRED
-- event per task.
--
-- The caller passes candidates read just before from the finished index (the oldest first: by
-- score up to the cutoff, and the oldest beyond the cap) and their keys, so every key is declared and
-- the batch is bounded; this script re-checks each (still in the index, still of this status, still
-- past the cutoff or beyond the cap), so two replicas expiring at once remove each task once.
--
-- KEYS[1] all_tasks        cb:tasks:all                  ZSET    every task
-- KEYS[2] idx              cb:tasks:status:{status}      ZSET    the status index
-- KEYS[3] finished         cb:tasks:finished:{status}    ZSET    tasks of the status by finish time
-- KEYS[4] events           cb:stream:tasks               STREAM  task events
-- KEYS[5] counts           cb:queues:counts              HASH    per-queue status counters
-- KEYS[6..] candidates     per candidate, 2 keys: cb:task:{id}, and its queue's cb:queue:{q}:all
--
-- ARGV[1] status           string   completed|failed|cancelled
-- ARGV[2] now_ms           integer  epoch milliseconds
-- ARGV[3] maxlen           integer  approximate retention of the event stream
-- ARGV[4] cutoff_ms        integer  tasks finished at or before this go; -1 = no age limit
-- ARGV[5] keep             integer  the newest this many of the status stay; -1 = no count cap
-- ARGV[6..] candidates     strings  per candidate, in the order of KEYS[6..]: id, queue (as read)
--
-- Returns {code, payload}:
--   OK   payload = {"expired":n,"skipped":n}: skipped = candidates no longer in the index, of
--        another status or queue, or within both limits now
--
-- Events: EXPIRED (one per task removed; no task snapshot)
-- include: lib/task.lua
-- include: lib/queue.lua

local all_key, idx_key, finished_key, events_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local status, now_ms, maxlen = ARGV[1], ARGV[2], ARGV[3]
local cutoff, keep = tonumber(ARGV[4]), tonumber(ARGV[5])

local expired, skipped = 0, 0
for i = 6, #KEYS - 1, 2 do
  local task_key, queue_all_key = KEYS[i], KEYS[i + 1]
  local task_id, queue = ARGV[i], ARGV[i + 1]
  local finished_at = redis.call('ZSCORE', finished_key, task_id)
  local due = false
  if finished_at and redis.call('HGET', task_key, 'status') == status and task_queue(task_key) == queue then
    due = (cutoff >= 0 and tonumber(finished_at) <= cutoff)
      or (keep >= 0 and redis.call('ZREVRANK', finished_key, task_id) >= keep)
  end
  if due then
    redis.call('DEL', task_key)
    redis.call('ZREM', all_key, task_id)
    redis.call('ZREM', idx_key, task_id)
    redis.call('ZREM', finished_key, task_id)
    redis.call('ZREM', queue_all_key, task_id)
    count_status(KEYS[5], queue, status, -1)
    append_event(events_key, maxlen, 'expired', task_id, '', now_ms, nil)
    expired = expired + 1
  else
    skipped = skipped + 1
  end
end
return {'OK', '{"expired":' .. expired .. ',"skipped":' .. skipped .. '}'}
