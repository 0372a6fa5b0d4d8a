-- Helpers for the metrics counters kept by the scripts (prepended by the registry).

-- Count one finished task in a ring of 120 one-second slots: slot = second % 120 holds
-- "<second>:<count>", so the hash never grows and a reader keeps only the recent seconds.
local function count_finished(throughput_key, now_ms)
  local second = math.floor(tonumber(now_ms) / 1000)
  local slot = tostring(second % 120)
  local count = 1
  local current = redis.call('HGET', throughput_key, slot)
  if current then
    local at, n = string.match(current, '^(%d+):(%d+)$')
    if tonumber(at) == second then
      count = tonumber(n) + 1
    end
  end
  redis.call('HSET', throughput_key, slot, second .. ':' .. count)
end
