-- SCHEDULE_RESUME: restart a paused schedule at its next run after now (ticks missed while paused
-- are not replayed). Resuming a running schedule changes nothing.
--
-- KEYS[1] schedule        cb:schedule:{id}        HASH    the schedule
-- KEYS[2] due             cb:schedules:due        ZSET    running schedules, score = next run (ms)
--
-- ARGV[1] schedule_id     string
-- ARGV[2] expected_seq    integer  the seq the caller read with the spec it computed next_run_ms from
-- ARGV[3] next_run_ms     integer  the next run after now, computed by the caller
-- ARGV[4] now_ms          integer  epoch milliseconds
--
-- Returns {code, payload}:
--   OK          payload = the schedule snapshot (running)
--   NOT_FOUND   payload = message
--   STALE       payload = message; another schedule of that id replaced the one read, nothing written
--
-- Events: none
-- include: lib/task.lua
-- include: lib/schedule.lua

local schedule_key, due_key = KEYS[1], KEYS[2]
local schedule_id, expected_seq, next_run_ms, now_ms = ARGV[1], ARGV[2], ARGV[3], ARGV[4]

local schedule, refusal = read_schedule(schedule_key, schedule_id)
if not schedule then
  return refusal
end
if schedule.seq ~= expected_seq then
  return {'STALE', 'Schedule ' .. schedule_id .. ' was deleted and created again meanwhile'}
end
if schedule.paused then
  redis.call('HSET', schedule_key, 'paused', '0', 'nextRun', next_run_ms, 'updatedAt', now_ms)
  redis.call('ZADD', due_key, next_run_ms, schedule_id)
end
return {'OK', schedule_snapshot(schedule_key)}
