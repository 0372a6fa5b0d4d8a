-- SCHEDULE_DELETE: remove a schedule and its index entries. Tasks it created stay.
--
-- KEYS[1] schedule        cb:schedule:{id}        HASH    the schedule
-- KEYS[2] all_schedules   cb:schedules:all        ZSET    every schedule, score = seq
-- KEYS[3] due             cb:schedules:due        ZSET    running schedules, score = next run (ms)
--
-- ARGV[1] schedule_id     string
--
-- Returns {code, payload}:
--   OK          payload = '{}'
--   NOT_FOUND   payload = message
--
-- Events: none

local schedule_key, all_key, due_key, schedule_id = KEYS[1], KEYS[2], KEYS[3], ARGV[1]

if redis.call('DEL', schedule_key) == 0 then
  return {'NOT_FOUND', 'Schedule ' .. schedule_id .. ' does not exist'}
end
redis.call('ZREM', all_key, schedule_id)
redis.call('ZREM', due_key, schedule_id)
return {'OK', '{}'}
