-- QUEUE_CONFIGURE: change a queue's settings, or pause or resume it. Configuring creates the queue
-- (it joins the registry); pausing or resuming needs a queue that exists (the default one always
-- does). Pause and resume are idempotent: an event only when the state changes.
--
-- KEYS[1] config           cb:queue:{q}:config           HASH    the queue's settings
-- KEYS[2] queues           cb:queues                     ZSET    queue registry (name, first use ms)
-- KEYS[3] system_events    cb:stream:system              STREAM  fleet events
--
-- ARGV[1] queue            string   the queue's name (validated by the caller)
-- ARGV[2] now_ms           integer  epoch milliseconds
-- ARGV[3] system_maxlen    integer  approximate retention of the system event stream
-- ARGV[4] action           string   configure | pause | resume
-- ARGV[5..] settings       pairs    (configure) field, value: concurrencyLimit, rateLimit,
--                                   rateWindowMs, defaultTimeoutMs, defaultRetry (JSON),
--                                   completedRetentionMs, failedRetentionMs; '' or '0' clears one
--
-- Returns {code, payload}:
--   OK              payload = the queue's settings (JSON object of the config hash)
--   NOT_FOUND       payload = message; pause/resume of a queue that does not exist
--   INVALID_CONFIG  payload = message; a rate limit without a rate window, nothing written
--
-- Events: system stream: queue.paused, queue.resumed
-- include: lib/instance.lua

local config_key, queues_key, system_events_key = KEYS[1], KEYS[2], KEYS[3]
local queue, now_ms, system_maxlen, action = ARGV[1], ARGV[2], ARGV[3], ARGV[4]

local function settings()
  local flat = redis.call('HGETALL', config_key)
  local t = {}
  for i = 1, #flat, 2 do
    t[flat[i]] = flat[i + 1]
  end
  if next(t) == nil then
    return '{}'
  end
  return cjson.encode(t)
end

local known = queue == 'default' or redis.call('ZSCORE', queues_key, queue)
if action ~= 'configure' then
  if not known then
    return {'NOT_FOUND', 'Queue ' .. queue .. ' does not exist'}
  end
  local paused = redis.call('HGET', config_key, 'paused') == '1'
  if (action == 'pause') ~= paused then
    if action == 'pause' then
      redis.call('HSET', config_key, 'paused', '1')
    else
      redis.call('HDEL', config_key, 'paused')
    end
    append_system_event(system_events_key, system_maxlen, 'queue.' .. action .. 'd', now_ms,
      cjson.encode({queue = queue}))
  end
  return {'OK', settings()}
end

local rate = redis.call('HGET', config_key, 'rateLimit')
local window = redis.call('HGET', config_key, 'rateWindowMs')
for i = 5, #ARGV - 1, 2 do
  if ARGV[i] == 'rateLimit' then
    rate = ARGV[i + 1]
  elseif ARGV[i] == 'rateWindowMs' then
    window = ARGV[i + 1]
  end
end
if rate and rate ~= '' and rate ~= '0' and (not window or window == '' or window == '0') then
  return {'INVALID_CONFIG', 'Queue ' .. queue .. ': a rate_limit needs a rate_window longer than 0'}
end
for i = 5, #ARGV - 1, 2 do
  if ARGV[i + 1] == '' or ARGV[i + 1] == '0' then
    redis.call('HDEL', config_key, ARGV[i])
  else
    redis.call('HSET', config_key, ARGV[i], ARGV[i + 1])
  end
end
redis.call('ZADD', queues_key, 'NX', now_ms, queue)
return {'OK', settings()}
