-- AGGREGATE_GLOBAL_METRICS: one consistent snapshot of the queue and fleet from counters the other
-- scripts keep (no scans): tasks per status, finished per second over the last window, average
-- wait from creation to first hand-over, live/stale/offline instances, event stream length.
-- The snapshot is also stored, for dashboards that read Redis directly.
--
-- KEYS[1] idx_pending      cb:tasks:status:pending       ZSET    status index
-- KEYS[2] idx_in_progress  cb:tasks:status:in_progress   ZSET    status index
-- KEYS[3] idx_completed    cb:tasks:status:completed     ZSET    status index
-- KEYS[4] idx_failed       cb:tasks:status:failed        ZSET    status index
-- KEYS[5] queue_metrics    cb:metrics:queues             HASH    waitTotalMs, waitCount, completed, failed
-- KEYS[6] throughput       cb:metrics:throughput         HASH    finishes per second (120-slot ring)
-- KEYS[7] liveness         cb:instances:liveness         ZSET    instances by last seen
-- KEYS[8] offline          cb:instances:offline          ZSET    instances declared offline
-- KEYS[9] events           cb:stream:tasks               STREAM  task events
-- KEYS[10] snapshot        cb:metrics:global             HASH    the stored snapshot
-- KEYS[11] idx_scheduled   cb:tasks:status:scheduled     ZSET    status index
-- KEYS[12] idx_cancelled   cb:tasks:status:cancelled     ZSET    status index
--
-- ARGV[1] now_ms           integer  epoch milliseconds
-- ARGV[2] ttl_ms           integer  liveness TTL
-- ARGV[3] window_s         integer  throughput window, 1..110 seconds
--
-- Returns {code, payload}:
--   OK   payload = JSON object of the snapshot
--
-- Events: none

local now_ms, ttl_ms, window_s = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])

local queues = redis.call('HMGET', KEYS[5], 'waitTotalMs', 'waitCount', 'completed', 'failed')
local wait_total, wait_count = tonumber(queues[1] or '0'), tonumber(queues[2] or '0')
local now_s = math.floor(now_ms / 1000)
local finished = 0
local ring = redis.call('HVALS', KEYS[6])
for _, slot in ipairs(ring) do
  local at, n = string.match(slot, '^(%d+):(%d+)$')
  -- The current second is still filling; count the window's full seconds before it.
  if tonumber(at) < now_s and tonumber(at) >= now_s - window_s then
    finished = finished + tonumber(n)
  end
end
local average_wait = 0
if wait_count > 0 then
  average_wait = wait_total / wait_count
end
local snapshot = {
  pending = redis.call('ZCARD', KEYS[1]),
  in_progress = redis.call('ZCARD', KEYS[2]),
  completed = redis.call('ZCARD', KEYS[3]),
  failed = redis.call('ZCARD', KEYS[4]),
  scheduled = redis.call('ZCARD', KEYS[11]),
  cancelled = redis.call('ZCARD', KEYS[12]),
  completedTotal = tonumber(queues[3] or '0'),
  failedTotal = tonumber(queues[4] or '0'),
  throughputPerSecond = finished / window_s,
  averageWaitMs = average_wait,
  liveInstances = redis.call('ZCOUNT', KEYS[7], now_ms - ttl_ms, '+inf'),
  staleInstances = redis.call('ZCOUNT', KEYS[7], '-inf', '(' .. (now_ms - ttl_ms)),
  offlineInstances = redis.call('ZCARD', KEYS[8]),
  eventStreamLength = redis.call('XLEN', KEYS[9]),
  computedAt = now_ms,
}
local fields = {}
for key, value in pairs(snapshot) do
  fields[#fields + 1] = key
  fields[#fields + 1] = tostring(value)
end
redis.call('HSET', KEYS[10], unpack(fields))
return {'OK', cjson.encode(snapshot)}
