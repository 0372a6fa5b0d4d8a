-- SCHEDULE_ADVANCE: record a tick of a schedule and move it to its next run. The caller read the
-- schedule as due at tick_ms and created the tick's task (id derived from the schedule and the
-- tick) before this call, or skipped a tick too late to run (task_id ''). Only the first caller for
-- a tick advances: a second one (another replica, a retry) finds nextRun moved and gets STALE.
--
-- KEYS[1] schedule        cb:schedule:{id}        HASH    the schedule
-- KEYS[2] due             cb:schedules:due        ZSET    running schedules, score = next run (ms)
--
-- ARGV[1] schedule_id     string
-- ARGV[2] expected_seq    integer  the seq the caller read (a schedule created again is another one)
-- ARGV[3] tick_ms         integer  the run the caller handled (nextRun as it read it)
-- ARGV[4] next_run_ms     integer  the following run, computed by the caller (later than now)
-- ARGV[5] task_id         string   the task created for the tick, '' when the tick was skipped
-- ARGV[6] now_ms          integer  epoch milliseconds
--
-- Returns {code, payload}:
--   OK          payload = the schedule snapshot
--   NOT_FOUND   payload = message (deleted meanwhile)
--   STALE       payload = message; the tick was already handled, or the schedule paused or
--               replaced meanwhile; nothing written
--
-- Events: none
-- include: lib/task.lua
-- include: lib/schedule.lua

local schedule_key, due_key = KEYS[1], KEYS[2]
local schedule_id, expected_seq, tick_ms, next_run_ms, task_id, now_ms =
  ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]

local schedule, refusal = read_schedule(schedule_key, schedule_id)
if not schedule then
  return refusal
end
if schedule.seq ~= expected_seq then
  return {'STALE', 'Schedule ' .. schedule_id .. ' was deleted and created again meanwhile'}
end
if schedule.paused or schedule.next_run ~= tick_ms then
  return {'STALE', 'Schedule ' .. schedule_id .. ' is no longer due at ' .. tick_ms}
end
if task_id ~= '' then
  redis.call('HSET', schedule_key, 'lastRun', tick_ms, 'lastTaskId', task_id)
end
redis.call('HSET', schedule_key, 'nextRun', next_run_ms, 'updatedAt', now_ms)
redis.call('ZADD', due_key, next_run_ms, schedule_id)
return {'OK', schedule_snapshot(schedule_key)}
