-- TASK_EXPIRE_LEASES: take back IN_PROGRESS tasks whose holder let its lease run out
-- (leaseDeadline < now): out of the holder's held set, TIMED_OUT event, then, per the caller's
-- retry_at for the task: a retry (SCHEDULED at retry_at, event SCHEDULED), FAILED for good (event
-- FAILED), or, for a task without a retry policy, today's failover rule (back to PENDING with
-- failovers + 1 and the holder on its deny list, or FAILED past max_failovers).
--
-- The caller passes candidates read just before from the leases index (ZRANGE leases -inf now
-- BYSCORE LIMIT 0 n) with the holder it read and the holder's held set, so every key is declared;
-- this script re-checks each (still in progress, deadline passed, same holder), so two replicas
-- expiring at once take each task back once. Entries of tasks that left IN_PROGRESS another way
-- (completed, released, deleted, ...) stay in the leases index until their deadline; this script
-- drops them then (counted as dropped), so no other script has to know the index.
--
-- KEYS[1] leases           cb:queue:tasks:leases         ZSET    in-progress tasks by lease deadline
-- KEYS[2] counts           cb:queues:counts              HASH    per-queue status counters
-- KEYS[3] due              cb:queue:tasks:due            ZSET    scheduled tasks by run_at
-- KEYS[4] idx_in_progress  cb:tasks:status:in_progress   ZSET    status index
-- KEYS[5] idx_pending      cb:tasks:status:pending       ZSET    status index
-- KEYS[6] idx_scheduled    cb:tasks:status:scheduled     ZSET    status index
-- KEYS[7] idx_failed       cb:tasks:status:failed        ZSET    status index
-- KEYS[8] events           cb:stream:tasks               STREAM  task events
-- KEYS[9] finished_failed  cb:tasks:finished:failed      ZSET    failed tasks by finish time
-- KEYS[10..] candidates    per candidate, 5 keys: cb:task:{id}, cb:queue:instance:{holder}, and
--                          its queue's cb:queue:{q}:pending, :backlog, :fair
--
-- ARGV[1] now_ms           integer  epoch milliseconds
-- ARGV[2] maxlen           integer  approximate retention of the event stream
-- ARGV[3] max_failovers    integer  a task without a retry policy fails over at most this often
-- ARGV[4..] candidates     strings  per candidate: task id, holder as read, retry_at: epoch ms of
--                                   the retry (> 0), 0 = no retry policy (failover rule), -1 = no
--                                   attempt left (FAILED); queue as read
--
-- Returns {code, payload}:
--   OK   payload = {"expired":n,"requeued":n,"scheduled":n,"failed":n,"dropped":n,"skipped":n}:
--        dropped = stale index entries removed (the task left IN_PROGRESS or is gone), skipped =
--        candidates not expired (lease extended, holder or queue changed: the next call reads them
--        again)
--
-- Events: TIMED_OUT (one per expired task), then SCHEDULED or FAILED when the task went there
-- include: lib/task.lua
-- include: lib/queue.lua

local k = {leases = KEYS[1], counts = KEYS[2], due = KEYS[3], idx_in_progress = KEYS[4],
  idx_pending = KEYS[5], idx_scheduled = KEYS[6], idx_failed = KEYS[7], events = KEYS[8],
  finished_failed = KEYS[9]}
local now_ms, maxlen, max_failovers = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3])

local counts = {expired = 0, requeued = 0, scheduled = 0, failed = 0, dropped = 0, skipped = 0}

local function fail(q, task_key, task_id, seq, holder, message)
  redis.call('ZREM', k.idx_in_progress, task_id)
  count_status(k.counts, q.name, 'in_progress', -1)
  count_status(k.counts, q.name, 'failed', 1)
  redis.call('ZADD', k.idx_failed, seq, task_id)
  redis.call('ZADD', k.finished_failed, now_ms, task_id)
  redis.call('HSET', task_key, 'status', 'failed', 'completedAt', now_ms, 'updatedAt', now_ms,
    'error', message)
  append_event(k.events, maxlen, 'timed_out', task_id, holder, now_ms, task_snapshot(task_key))
  append_event(k.events, maxlen, 'failed', task_id, holder, now_ms, task_snapshot(task_key))
  counts.failed = counts.failed + 1
end

for i = 10, #KEYS - 4, 5 do
  local task_key, held_key = KEYS[i], KEYS[i + 1]
  local n = (i - 10) / 5
  local task_id, holder, retry_at = ARGV[4 + 4 * n], ARGV[5 + 4 * n], tonumber(ARGV[6 + 4 * n])
  local q = {name = ARGV[7 + 4 * n], pending = KEYS[i + 2], backlog = KEYS[i + 3], fair = KEYS[i + 4]}
  local t = redis.call('HMGET', task_key, 'status', 'assignedTo', 'leaseDeadline', 'seq', 'failovers',
    'deny', 'timeoutMs')
  if t[1] ~= 'in_progress' or not t[3] then
    redis.call('ZREM', k.leases, task_id)
    counts.dropped = counts.dropped + 1
  elseif tonumber(t[3]) >= now_ms or t[2] ~= holder or task_queue(task_key) ~= q.name then
    redis.call('ZADD', k.leases, t[3], task_id)  -- keeps the index's score the task's deadline
    counts.skipped = counts.skipped + 1
  else
    counts.expired = counts.expired + 1
    local seq = t[4]
    local why = 'its lease expired: holder ' .. holder .. ' did not finish within the timeout of ' ..
      (t[7] or '?') .. ' ms'
    redis.call('ZREM', k.leases, task_id)
    redis.call('ZREM', held_key, task_id)
    redis.call('HDEL', task_key, 'leaseDeadline', 'assignedAt')
    redis.call('HSET', task_key, 'timedOutHolder', holder)
    if retry_at == -1 then
      fail(q, task_key, task_id, seq, holder, why .. '; no attempt left')
    elseif retry_at > 0 then
      redis.call('ZREM', k.idx_in_progress, task_id)
      redis.call('ZADD', k.idx_scheduled, seq, task_id)
      count_status(k.counts, q.name, 'in_progress', -1)
      count_status(k.counts, q.name, 'scheduled', 1)
      redis.call('ZADD', k.due, retry_at, task_id)
      redis.call('HSET', task_key, 'status', 'scheduled', 'runAt', retry_at, 'assignedTo', '',
        'updatedAt', now_ms, 'error', why)
      append_event(k.events, maxlen, 'timed_out', task_id, holder, now_ms, task_snapshot(task_key))
      append_event(k.events, maxlen, 'scheduled', task_id, holder, now_ms, task_snapshot(task_key))
      counts.scheduled = counts.scheduled + 1
    else
      local failovers = tonumber(t[5] or '0') + 1
      local deny = {}
      if t[6] and t[6] ~= '' then
        deny = cjson.decode(t[6])
      end
      if not json_list_contains(t[6], holder) then
        deny[#deny + 1] = holder
      end
      redis.call('HSET', task_key, 'deny', cjson.encode(deny), 'failovers', failovers)
      if failovers > max_failovers then
        fail(q, task_key, task_id, seq, holder, why .. '; failed over ' .. failovers ..
          ' times (more than ' .. max_failovers .. ')')
      else
        requeue(q, task_key, task_id, now_ms, k)
        redis.call('HSET', task_key, 'releaseReason', why)
        append_event(k.events, maxlen, 'timed_out', task_id, holder, now_ms, task_snapshot(task_key))
        counts.requeued = counts.requeued + 1
      end
    end
  end
end
return {'OK', cjson.encode(counts)}
