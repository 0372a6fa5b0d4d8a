-- Helpers shared by the schedule scripts (prepended by the registry after lib/task.lua).

-- The schedule hash as a JSON object (every value a string).
local function schedule_snapshot(schedule_key)
  return cjson.encode(hash_to_table(redis.call('HGETALL', schedule_key)))
end

-- The schedule's {paused, next_run, seq}, or nil plus the NOT_FOUND reply.
local function read_schedule(schedule_key, schedule_id)
  local f = redis.call('HMGET', schedule_key, 'paused', 'nextRun', 'seq')
  if not f[3] then
    return nil, {'NOT_FOUND', 'Schedule ' .. schedule_id .. ' does not exist'}
  end
  return {paused = f[1] == '1', next_run = f[2], seq = f[3]}
end
