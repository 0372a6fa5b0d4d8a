-- SCHEDULE_PAUSE: stop a schedule's ticks: out of the due index, no next run. Pausing a paused
-- schedule changes nothing.
--
-- KEYS[1] schedule        cb:schedule:{id}        HASH    the schedule
-- KEYS[2] due             cb:schedules:due        ZSET    running schedules, score = next run (ms)
--
-- ARGV[1] schedule_id     string
-- ARGV[2] now_ms          integer  epoch milliseconds
--
-- Returns {code, payload}:
--   OK          payload = the schedule snapshot (paused)
--   NOT_FOUND   payload = message
--
-- Events: none
-- include: lib/task.lua
-- include: lib/schedule.lua

local schedule_key, due_key, schedule_id, now_ms = KEYS[1], KEYS[2], ARGV[1], ARGV[2]

local schedule, refusal = read_schedule(schedule_key, schedule_id)
if not schedule then
  return refusal
end
if not schedule.paused then
  redis.call('HSET', schedule_key, 'paused', '1', 'updatedAt', now_ms)
  redis.call('HDEL', schedule_key, 'nextRun')
  redis.call('ZREM', due_key, schedule_id)
end
return {'OK', schedule_snapshot(schedule_key)}
