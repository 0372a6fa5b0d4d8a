-- HOOK_VALIDATE: the Redis half of PreToolUse, in one step: the tool's circuit breaker, the rate
-- limit, the tool's hook configuration and the call statistics. The rules themselves (regular
-- expressions over the tool's parameters) run in the server on the configuration returned here.
--
-- Rate limit: a fixed window per instance (window_ms long, the caller names the window's counter
-- key), exact under concurrency (one INCR). A tool whose configuration sets rateLimit is counted
-- in its own per-instance, per-tool counter against that limit instead.
-- Circuit: open until `until`; after that the first call finds it half-open and goes through
-- (HOOK_PROCESS_RESULT closes it on a success, reopens it on a failure).
--
-- KEYS[1] circuit          cb:hook:circuit:{tool}                  HASH    state, openedAt, until, errors
-- KEYS[2] config           cb:hook:config:{tool}                   STRING  the tool's configuration (JSON)
-- KEYS[3] instance_rate    cb:hook:rate:{instance}:{window}        STRING  calls in this window
-- KEYS[4] tool_rate        cb:hook:rate:{instance}:{tool}:{window} STRING  calls in this window (rateLimit)
-- KEYS[5] stats            cb:hook:stats:{tool}                    HASH    validated, rateLimited, circuitDenied
--
-- ARGV[1] tool             string
-- ARGV[2] instance_id      string
-- ARGV[3] now_ms           integer  epoch milliseconds
-- ARGV[4] window_ms        integer  rate-limit window length
-- ARGV[5] default_limit    integer  calls per window per instance
-- ARGV[6] window_end_ms    integer  when the current window ends (for the retry hint)
--
-- Returns {code, payload}:
--   OK            payload = {"config": <stored JSON or null>, "circuit": "closed"|"half_open"}
--   CIRCUIT_OPEN  payload = message (names the tool, the errors and when it half-opens)
--   RATE_LIMITED  payload = message (names the limit and when the window resets)
--
-- Events: none

local circuit_key, config_key, instance_rate_key, tool_rate_key, stats_key =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local tool, instance_id = ARGV[1], ARGV[2]
local now_ms, window_ms, default_limit, window_end_ms =
  tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])

local circuit = redis.call('HMGET', circuit_key, 'state', 'until', 'errors')
local circuit_state = 'closed'
if circuit[1] == 'open' then
  if now_ms < tonumber(circuit[2]) then
    redis.call('HINCRBY', stats_key, 'circuitDenied', 1)
    return {'CIRCUIT_OPEN', 'circuit open for tool ' .. tool .. ' after ' .. (circuit[3] or '?') ..
      ' errors; it half-opens in ' .. math.ceil((tonumber(circuit[2]) - now_ms) / 1000) .. ' s'}
  end
  redis.call('HSET', circuit_key, 'state', 'half_open')
  circuit_state = 'half_open'
elseif circuit[1] == 'half_open' then
  circuit_state = 'half_open'
end

local config = redis.call('GET', config_key)
local limit, counter_key = default_limit, instance_rate_key
if config then
  local tool_limit = cjson.decode(config)['rateLimit']
  if type(tool_limit) == 'number' then
    limit, counter_key = tool_limit, tool_rate_key
  end
end
local calls = redis.call('INCR', counter_key)
if calls == 1 then
  redis.call('PEXPIRE', counter_key, window_ms * 2)
end
if calls > limit then
  redis.call('HINCRBY', stats_key, 'rateLimited', 1)
  return {'RATE_LIMITED', 'rate limit exceeded: ' .. limit .. ' calls per ' ..
    math.floor(window_ms / 1000) .. ' s for instance ' .. instance_id .. '; the window resets in ' ..
    math.ceil((window_end_ms - now_ms) / 1000) .. ' s'}
end
redis.call('HINCRBY', stats_key, 'validated', 1)
return {'OK', '{"config":' .. (config or 'null') .. ',"circuit":"' .. circuit_state .. '"}'}
