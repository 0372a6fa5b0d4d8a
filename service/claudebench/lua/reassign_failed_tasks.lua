-- REASSIGN_FAILED_TASKS: declare one silent instance offline and recover every task it held. Each
-- task goes back to the pending queue (failovers + 1, the dead instance added to its deny list so
-- it is not handed straight back; one REASSIGNED event), or to FAILED once it has failed over more
-- than max_failovers times. A task with a retry policy follows it instead (the caller passes its
-- retry_at): SCHEDULED for a retry (event SCHEDULED), or FAILED when no attempt is left. Safe to run from several replicas at once: only the first run that
-- finds the instance active and silent does anything.
--
-- KEYS[1] instance         cb:instance:{id}              HASH    the registration
-- KEYS[2] liveness         cb:instances:liveness         ZSET    live instances by last seen
-- KEYS[3] offline          cb:instances:offline          ZSET    instances declared offline, score = when
-- KEYS[4] held             cb:queue:instance:{id}        ZSET    tasks the instance holds
-- KEYS[5] counts           cb:queues:counts              HASH    per-queue status counters
-- KEYS[6] idx_pending      cb:tasks:status:pending       ZSET    status index
-- KEYS[7] idx_in_progress  cb:tasks:status:in_progress   ZSET    status index
-- KEYS[8] idx_failed       cb:tasks:status:failed        ZSET    status index
-- KEYS[9] events           cb:stream:tasks               STREAM  task events
-- KEYS[10] leader          cb:leader:current             STRING  the leader lease
-- KEYS[11] gossip          cb:gossip:health              HASH    instance id -> health
-- KEYS[12] gossip_counts   cb:gossip:counts              HASH    total, healthy
-- KEYS[13] system_events   cb:stream:system              STREAM  fleet events
-- KEYS[14] finished_failed  cb:tasks:finished:failed      ZSET    failed tasks by finish time
-- KEYS[15] due             cb:queue:tasks:due            ZSET    scheduled tasks by run_at
-- KEYS[16] idx_scheduled   cb:tasks:status:scheduled     ZSET    status index
-- KEYS[17..] tasks         per held task, 4 keys: cb:task:{id}, and its queue's
--                          cb:queue:{q}:pending, :backlog, :fair (as read by the caller)
--
-- ARGV[1] instance_id         string
-- ARGV[2] now_ms              integer  epoch milliseconds
-- ARGV[3] timeout_ms          integer  silent for longer than this = dead
-- ARGV[4] max_failovers       integer  a task failing over more often than this becomes FAILED
-- ARGV[5] maxlen              integer  approximate retention of the task event stream
-- ARGV[6] system_maxlen       integer  approximate retention of the system event stream
-- ARGV[7] offline_retention_ms integer how long the record of an offline instance is kept
-- ARGV[8] retry_at          string   JSON object: task id -> retry_at (epoch ms of its retry, or -1:
--                                      no attempt left) for the held tasks with a retry policy
-- ARGV[9..] tasks             strings  per held task, in the order of KEYS[17..]: id, queue
--
-- Returns {code, payload}:
--   OK         payload = {"reaped":bool,"requeued":n,"scheduled":n,"failed":n}; scheduled = retries
--              of tasks with a retry policy; reaped=false when the instance
--              is already offline or has been seen within timeout_ms (nothing written)
--   NOT_FOUND  payload = message
--   STALE      payload = message; the held set changed since the caller read it, nothing written
--
-- Events: REASSIGNED, SCHEDULED or FAILED (one per held task); system stream: instance.failed
-- include: lib/task.lua
-- include: lib/queue.lua
-- include: lib/instance.lua

local instance_key, offline_key, idx_failed_key, events_key, system_events_key =
  KEYS[1], KEYS[3], KEYS[8], KEYS[9], KEYS[13]
local k = {liveness = KEYS[2], held = KEYS[4], counts = KEYS[5], idx_pending = KEYS[6],
  idx_in_progress = KEYS[7], leader = KEYS[10], gossip = KEYS[11], gossip_counts = KEYS[12]}
local instance_id, now_ms, timeout_ms, max_failovers, maxlen, system_maxlen, retention_ms =
  ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5], ARGV[6], ARGV[7]

local instance = redis.call('HMGET', instance_key, 'status', 'lastSeen')
if not instance[1] then
  return {'NOT_FOUND', 'Instance ' .. instance_id .. ' is not registered'}
end
if instance[1] ~= 'active' or now_ms - tonumber(instance[2]) <= timeout_ms then
  return {'OK', '{"reaped":false,"requeued":0,"scheduled":0,"failed":0}'}
end
if not held_matches(k.held, 9, 2) then
  return {'STALE', 'The tasks of ' .. instance_id .. ' changed while they were being recovered'}
end

local requeued, scheduled, failed = 0, 0, 0
local finished_failed_key, due_key, idx_scheduled_key = KEYS[14], KEYS[15], KEYS[16]
local retry_at = cjson.decode(ARGV[8])
local why = 'its holder ' .. instance_id .. ' stopped responding'

local function fail(q, task_key, task_id, seq, message)
  redis.call('ZREM', k.idx_in_progress, task_id)
  count_status(k.counts, q.name, 'in_progress', -1)
  count_status(k.counts, q.name, 'failed', 1)
  redis.call('ZADD', idx_failed_key, seq, task_id)
  redis.call('ZADD', finished_failed_key, now_ms, task_id)
  redis.call('HSET', task_key, 'status', 'failed', 'completedAt', now_ms, 'updatedAt', now_ms,
    'error', message)
  append_event(events_key, maxlen, 'failed', task_id, instance_id, now_ms, task_snapshot(task_key))
  failed = failed + 1
end

local held = held_tasks(17, 9)
if not held then
  return {'STALE', 'The tasks of ' .. instance_id .. ' changed queue while they were being recovered'}
end
for _, t in ipairs(held) do
  local task_key, task_id = t.key, t.id
  local task = redis.call('HMGET', task_key, 'deny', 'failovers', 'seq')
  local retry = tonumber(retry_at[task_id] or 0)
  if retry > 0 then
    redis.call('ZREM', k.idx_in_progress, task_id)
    redis.call('ZADD', idx_scheduled_key, task[3], task_id)
    count_status(k.counts, t.q.name, 'in_progress', -1)
    count_status(k.counts, t.q.name, 'scheduled', 1)
    redis.call('ZADD', due_key, retry, task_id)
    redis.call('HDEL', task_key, 'assignedAt', 'leaseDeadline')
    redis.call('HSET', task_key, 'status', 'scheduled', 'runAt', string.format('%.0f', retry),
      'assignedTo', '', 'error', why, 'updatedAt', now_ms)
    append_event(events_key, maxlen, 'scheduled', task_id, instance_id, now_ms, task_snapshot(task_key))
    scheduled = scheduled + 1
  elseif retry == -1 then
    fail(t.q, task_key, task_id, task[3], why .. '; no attempt left')
  else
    local deny = {}
    if task[1] and task[1] ~= '' then
      deny = cjson.decode(task[1])
    end
    if not json_list_contains(task[1], instance_id) then
      deny[#deny + 1] = instance_id
    end
    local failovers = tonumber(task[2] or '0') + 1
    redis.call('HSET', task_key, 'deny', cjson.encode(deny), 'failovers', failovers)
    if failovers > max_failovers then
      fail(t.q, task_key, task_id, task[3], 'failed over ' .. failovers .. ' times (more than ' ..
        max_failovers .. '): ' .. why)
    else
      requeue(t.q, task_key, task_id, now_ms, k)
      redis.call('HSET', task_key, 'releaseReason', 'holder ' .. instance_id .. ' stopped responding')
      append_event(events_key, maxlen, 'reassigned', task_id, instance_id, now_ms,
        task_snapshot(task_key))
      requeued = requeued + 1
    end
  end
end

retire_instance(instance_id, k)
redis.call('HSET', instance_key, 'status', 'offline', 'offlineAt', now_ms)
redis.call('PEXPIRE', instance_key, retention_ms)
redis.call('ZADD', offline_key, now_ms, instance_id)
redis.call('ZREMRANGEBYSCORE', offline_key, '-inf', now_ms - tonumber(retention_ms))
append_system_event(system_events_key, system_maxlen, 'instance.failed', now_ms,
  cjson.encode({instanceId = instance_id, lastSeen = tonumber(instance[2]),
    tasksRequeued = requeued, tasksScheduled = scheduled, tasksFailed = failed}))
return {'OK', '{"reaped":true,"requeued":' .. requeued .. ',"scheduled":' .. scheduled ..
  ',"failed":' .. failed .. '}'}
