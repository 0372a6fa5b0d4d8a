-- TASK_PROGRESS: the holder of an IN_PROGRESS task reports progress (ReportProgress): the keys given
-- are merged into the task's progress (one 'p:{key}' field each, like metadata), its lease is
-- extended to now + extend_ms (a task without a timeout has no lease: nothing to extend), and a
-- PROGRESS event is appended, at most one per event_interval_ms per task (coalesced: the task
-- always holds the newest progress, the events sample it). A holder whose task was cancelled learns
-- it here: OK with cancelled = true, nothing written.
--
-- KEYS[1] task             cb:task:{id}                  HASH    the task
-- KEYS[2] leases           cb:queue:tasks:leases         ZSET    in-progress tasks by lease deadline
-- KEYS[3] events           cb:stream:tasks               STREAM  task events
--
-- ARGV[1] task_id            string
-- ARGV[2] worker_id          string   must be the holder
-- ARGV[3] now_ms             integer  epoch milliseconds
-- ARGV[4] maxlen             integer  approximate retention of the event stream
-- ARGV[5] extend_ms          integer  the new lease is now + extend_ms; 0 = the task's timeout
-- ARGV[6] event_interval_ms  integer  the least time between two PROGRESS events of the task
-- ARGV[7..] progress         pairs    key, JSON-encoded value, ... merged into the progress
--
-- Returns {code, payload}:
--   OK         payload = {"task":snapshot,"cancelled":bool}
--   NOT_FOUND  payload = message
--   NOT_HELD   payload = message; the task is not in progress with this worker (names its status),
--              or its lease already expired
--
-- Events: PROGRESS (coalesced, see above)
-- include: lib/task.lua

local task_key, leases_key, events_key = KEYS[1], KEYS[2], KEYS[3]
local task_id, worker_id, now_ms, maxlen, extend_ms, interval_ms =
  ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4], tonumber(ARGV[5]), tonumber(ARGV[6])

local t = redis.call('HMGET', task_key, 'status', 'assignedTo', 'leaseDeadline', 'timeoutMs',
  'progressEventAt', 'cancelledHolder')
local status, assigned_to = t[1], t[2] or ''
if not status then
  return {'NOT_FOUND', 'Task ' .. task_id .. ' does not exist'}
end
if status == 'cancelled' and t[6] == worker_id then
  return {'OK', '{"task":' .. task_snapshot(task_key) .. ',"cancelled":true}'}
end
if status ~= 'in_progress' or assigned_to ~= worker_id then
  return {'NOT_HELD', 'Task ' .. task_id .. ' is not held by ' .. worker_id .. ' (status ' .. status ..
    ', held by ' .. (assigned_to ~= '' and assigned_to or 'nobody') .. ')'}
end
if t[3] and now_ms > tonumber(t[3]) then
  return {'NOT_HELD', 'Task ' .. task_id .. ' is no longer held by ' .. worker_id ..
    ': its lease expired at ' .. t[3] .. ' (epoch ms) before this report'}
end

local fields = {'updatedAt', now_ms}
for i = 7, #ARGV - 1, 2 do
  fields[#fields + 1] = 'p:' .. ARGV[i]
  fields[#fields + 1] = ARGV[i + 1]
end
if t[4] then
  local extend = extend_ms > 0 and extend_ms or tonumber(t[4])
  local deadline = string.format('%.0f', now_ms + extend)
  fields[#fields + 1] = 'leaseDeadline'
  fields[#fields + 1] = deadline
  redis.call('ZADD', leases_key, deadline, task_id)
end
local eventful = #ARGV >= 7 and (not t[5] or now_ms - tonumber(t[5]) >= interval_ms)
if eventful then
  fields[#fields + 1] = 'progressEventAt'
  fields[#fields + 1] = now_ms
end
redis.call('HSET', task_key, unpack(fields))
local snapshot = task_snapshot(task_key)
if eventful then
  append_event(events_key, maxlen, 'progress', task_id, worker_id, now_ms, snapshot)
end
return {'OK', '{"task":' .. snapshot .. ',"cancelled":false}'}
