-- SYNC_GLOBAL_STATE: record the latest fleet change and bump the global state version, which only
-- ever grows (clients compare versions to notice changes).
--
-- KEYS[1] state            cb:state:global           HASH    version, data (JSON), timestamp
--
-- ARGV[1] state_json       string   a JSON object describing the change
-- ARGV[2] now_ms           integer  epoch milliseconds
--
-- Returns {code, payload}:
--   OK   payload = the new version
--
-- Events: none

local state_key = KEYS[1]
local state_json, now_ms = ARGV[1], ARGV[2]

local version = redis.call('HINCRBY', state_key, 'version', 1)
redis.call('HSET', state_key, 'data', state_json, 'timestamp', now_ms)
return {'OK', tostring(version)}
