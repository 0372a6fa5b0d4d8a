-- HOOK_PROCESS_RESULT: the PostToolUse bookkeeping in one step: a capped per-tool log, execution
-- and error counters, an exact sliding window of errors, and the tool's circuit breaker. When the
-- errors in the window exceed the threshold the circuit opens for the cool-down and one
-- hook.circuit_opened alert is appended; a success while half-open (cool-down over) closes it, a
-- failure then reopens it.
--
-- KEYS[1] circuit          cb:hook:circuit:{tool}        HASH    state, openedAt, until, errors
-- KEYS[2] errors           cb:hook:errors:{tool}         ZSET    recent errors, score = time (ms)
-- KEYS[3] log              cb:hook:log:{tool}            LIST    newest first, capped, with a TTL
-- KEYS[4] stats            cb:hook:stats:{tool}          HASH    executions, errors
-- KEYS[5] system_events    cb:stream:system              STREAM  fleet events (the alert)
--
-- ARGV[1] tool             string
-- ARGV[2] call_id          string   unique per call (the member of the error window)
-- ARGV[3] success          string   1 or 0
-- ARGV[4] now_ms           integer  epoch milliseconds
-- ARGV[5] window_ms        integer  error window length
-- ARGV[6] threshold        integer  errors in the window above which the circuit opens
-- ARGV[7] cooldown_ms      integer  how long the circuit stays open
-- ARGV[8] log_entry        string   JSON line for the log
-- ARGV[9] log_cap          integer  entries kept in the log
-- ARGV[10] log_ttl_ms      integer  the log's TTL
-- ARGV[11] system_maxlen   integer  approximate retention of the system event stream
--
-- Returns {code, payload}:
--   OK   payload = {"errors":n,"circuit":"closed"|"open"|"half_open"}
--
-- Events: system stream: hook.circuit_opened (once per opening)

local circuit_key, errors_key, log_key, stats_key, system_events_key =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local tool, call_id, success = ARGV[1], ARGV[2], ARGV[3] == '1'
local now_ms, window_ms, threshold, cooldown_ms =
  tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])

redis.call('LPUSH', log_key, ARGV[8])
redis.call('LTRIM', log_key, 0, tonumber(ARGV[9]) - 1)
redis.call('PEXPIRE', log_key, ARGV[10])
redis.call('HINCRBY', stats_key, 'executions', 1)

redis.call('ZREMRANGEBYSCORE', errors_key, '-inf', '(' .. (now_ms - window_ms))
if not success then
  redis.call('HINCRBY', stats_key, 'errors', 1)
  redis.call('ZADD', errors_key, now_ms, call_id)
  -- Only whether the count passes the threshold matters: keep it bounded.
  redis.call('ZREMRANGEBYRANK', errors_key, 0, -(threshold + 2))
  redis.call('PEXPIRE', errors_key, window_ms)
end
local errors = redis.call('ZCARD', errors_key)

local circuit = redis.call('HMGET', circuit_key, 'state', 'until')
local state = circuit[1] or 'closed'
if state == 'open' and now_ms >= tonumber(circuit[2]) then
  state = 'half_open'
end

local function open()
  redis.call('HSET', circuit_key, 'state', 'open', 'openedAt', now_ms,
    'until', now_ms + cooldown_ms, 'errors', errors)
  redis.call('XADD', system_events_key, 'MAXLEN', '~', ARGV[11], '*', 'type', 'hook.circuit_opened',
    'time', now_ms, 'data', cjson.encode({tool = tool, errorCount = errors,
      message = 'circuit opened for ' .. tool .. ': ' .. errors .. ' errors within ' ..
        math.floor(window_ms / 1000) .. ' s'}))
  return 'open'
end

if state == 'half_open' then
  if success then
    redis.call('DEL', circuit_key, errors_key)
    state, errors = 'closed', 0
  else
    state = open()
  end
elseif state == 'closed' and not success and errors > threshold then
  state = open()
end
return {'OK', cjson.encode({errors = errors, circuit = state})}
