-- COORDINATE_BATCH: one processor per batch id. The first caller takes the batch's lock (with a
-- TTL); the holder re-enters to report progress (stored, visible to everyone, never going back)
-- and extend its lock, and releases it with done (one batch.completed event). Others learn who
-- holds the batch and how far it got; when a holder dies its lock lapses and another caller takes
-- over from the recorded progress.
--
-- KEYS[1] lock             cb:batch:{id}:lock        STRING  the holder's id, expires after lock_ttl_ms
-- KEYS[2] progress         cb:batch:{id}             HASH    processor, processed, total, status, times
-- KEYS[3] system_events    cb:stream:system          STREAM  fleet events
--
-- ARGV[1] batch_id         string
-- ARGV[2] instance_id      string
-- ARGV[3] total_items      integer  >= 0; 0 keeps the stored total
-- ARGV[4] processed_items  integer  >= 0; progress never goes back
-- ARGV[5] done             string   1 = the holder finished the batch
-- ARGV[6] now_ms           integer  epoch milliseconds
-- ARGV[7] lock_ttl_ms      integer  how long the lock lasts without a call from its holder
-- ARGV[8] retention_ms     integer  how long the batch record is kept after its last change
-- ARGV[9] system_maxlen    integer  approximate retention of the system event stream
--
-- Returns {code, payload}:
--   OK   payload = {"acquired":bool,"completed":bool,"processor":id,"processed":n,"total":n}
--
-- Events: system stream: batch.completed (once per batch)

local lock_key, progress_key, system_events_key = KEYS[1], KEYS[2], KEYS[3]
local batch_id, instance_id = ARGV[1], ARGV[2]
local total, processed, done = tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5] == '1'
local now_ms, lock_ttl_ms, retention_ms, system_maxlen = ARGV[6], ARGV[7], ARGV[8], ARGV[9]

local function reply(acquired, completed, processor, processed_items, total_items)
  return {'OK', cjson.encode({acquired = acquired, completed = completed, processor = processor,
    processed = tonumber(processed_items or '0'), total = tonumber(total_items or '0')})}
end

local stored = redis.call('HMGET', progress_key, 'status', 'processor', 'processed', 'total')
if stored[1] == 'completed' then
  return reply(false, true, stored[2], stored[3], stored[4])
end
local holder = redis.call('GET', lock_key)
if holder and holder ~= instance_id then
  return reply(false, false, holder, stored[3], stored[4])
end

redis.call('SET', lock_key, instance_id, 'PX', lock_ttl_ms)
processed = math.max(processed, tonumber(stored[3] or '0'))
if total == 0 then
  total = tonumber(stored[4] or '0')
end
redis.call('HSET', progress_key, 'batchId', batch_id, 'processor', instance_id,
  'processed', processed, 'total', total, 'status', 'running', 'updatedAt', now_ms)
redis.call('HSETNX', progress_key, 'startedAt', now_ms)
if done then
  redis.call('HSET', progress_key, 'status', 'completed', 'completedAt', now_ms)
  redis.call('DEL', lock_key)
  redis.call('XADD', system_events_key, 'MAXLEN', '~', system_maxlen, '*', 'type', 'batch.completed',
    'time', now_ms, 'data', cjson.encode({batchId = batch_id, processorId = instance_id,
      itemsProcessed = processed}))
end
redis.call('PEXPIRE', progress_key, retention_ms)
return reply(true, done, instance_id, processed, total)
