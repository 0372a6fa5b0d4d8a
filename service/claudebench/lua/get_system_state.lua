-- GET_SYSTEM_STATE: one consistent view: a page of instances (the caller reads the page of ids from
-- the liveness index and passes their keys), task counts by status, the newest task events and
-- the global state version.
--
-- KEYS[1] idx_pending      cb:tasks:status:pending       ZSET    status index
-- KEYS[2] idx_in_progress  cb:tasks:status:in_progress   ZSET    status index
-- KEYS[3] idx_completed    cb:tasks:status:completed     ZSET    status index
-- KEYS[4] idx_failed       cb:tasks:status:failed        ZSET    status index
-- KEYS[5] state            cb:state:global               HASH    version
-- KEYS[6] events           cb:stream:tasks               STREAM  task events
-- KEYS[7] idx_scheduled    cb:tasks:status:scheduled     ZSET    status index
-- KEYS[8] idx_cancelled    cb:tasks:status:cancelled     ZSET    status index
-- KEYS[9..] instances      cb:instance:{id}, cb:queue:instance:{id}  HASH, ZSET  pairs, one per id
--
-- ARGV[1] recent_events    integer  0..100 newest events to return
-- ARGV[2..] instance_ids   strings  one per pair of KEYS[9..]
--
-- Returns {code, payload}:
--   OK   payload = {"counts":{status:n},"version":n,"instances":[{id, roles, status, maxTasks,
--        lastSeen, held}...],"events":[[id, [field, value, ...]]...]} (an empty list may come as {})
--
-- Events: none

local recent = tonumber(ARGV[1])
local instances = {}
for i = 9, #KEYS, 2 do
  local f = redis.call('HMGET', KEYS[i], 'roles', 'status', 'maxTasks', 'lastSeen')
  if f[2] then
    instances[#instances + 1] = {id = ARGV[2 + (i - 9) / 2], roles = f[1], status = f[2],
      maxTasks = tonumber(f[3]), lastSeen = tonumber(f[4]), held = redis.call('ZCARD', KEYS[i + 1])}
  end
end
local events = {}
if recent > 0 then
  events = redis.call('XREVRANGE', KEYS[6], '+', '-', 'COUNT', recent)
end
return {'OK', cjson.encode({
  counts = {pending = redis.call('ZCARD', KEYS[1]), in_progress = redis.call('ZCARD', KEYS[2]),
    completed = redis.call('ZCARD', KEYS[3]), failed = redis.call('ZCARD', KEYS[4]),
    scheduled = redis.call('ZCARD', KEYS[7]), cancelled = redis.call('ZCARD', KEYS[8])},
  version = tonumber(redis.call('HGET', KEYS[5], 'version') or '0'),
  instances = instances,
  events = events,
})}
