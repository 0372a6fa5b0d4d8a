-- SCHEDULE_CREATE: create a periodic schedule, running (in the due index at its first run) or paused.
--
-- KEYS[1] schedule        cb:schedule:{id}        HASH    the new schedule
-- KEYS[2] all_schedules   cb:schedules:all        ZSET    every schedule, score = seq
-- KEYS[3] due             cb:schedules:due        ZSET    running schedules, score = next run (ms)
-- KEYS[4] seq             cb:seq:schedules        STRING  creation counter (orders ListSchedules)
--
-- ARGV[1] schedule_id     string   validated by the caller
-- ARGV[2] cron            string   5-field cron expression, '' for an interval schedule
-- ARGV[3] interval_ms     integer  the interval, '' for a cron schedule
-- ARGV[4] time_zone       string   IANA time zone of the cron expression, '' for an interval
-- ARGV[5] template        string   the task each tick creates (protobuf JSON of a CreateTaskRequest)
-- ARGV[6] paused          string   1 = created paused (not due), 0 = running
-- ARGV[7] next_run_ms     integer  the first run, computed by the caller (unused when paused)
-- ARGV[8] now_ms          integer  epoch milliseconds
--
-- Returns {code, payload}:
--   OK              payload = the schedule snapshot (JSON object of its hash)
--   ALREADY_EXISTS  payload = message; nothing was written
--
-- Events: none
-- include: lib/task.lua
-- include: lib/schedule.lua

local schedule_key, all_key, due_key, seq_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local schedule_id, cron, interval_ms, time_zone = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local template, paused, next_run_ms, now_ms = ARGV[5], ARGV[6], ARGV[7], ARGV[8]

if redis.call('EXISTS', schedule_key) == 1 then
  return {'ALREADY_EXISTS', 'Schedule ' .. schedule_id .. ' already exists'}
end
local seq = redis.call('INCR', seq_key)
local fields = {'id', schedule_id, 'seq', seq, 'timeZone', time_zone, 'template', template,
  'paused', paused, 'lastTaskId', '', 'createdAt', now_ms, 'updatedAt', now_ms}
if cron ~= '' then
  fields[#fields + 1], fields[#fields + 2] = 'cron', cron
else
  fields[#fields + 1], fields[#fields + 2] = 'intervalMs', interval_ms
end
if paused ~= '1' then
  fields[#fields + 1], fields[#fields + 2] = 'nextRun', next_run_ms
  redis.call('ZADD', due_key, next_run_ms, schedule_id)
end
redis.call('HSET', schedule_key, unpack(fields))
redis.call('ZADD', all_key, seq, schedule_id)
return {'OK', schedule_snapshot(schedule_key)}
