-- GOSSIP_HEALTH_UPDATE: record an instance's health as seen by the fleet and apply the partition
-- rule: with more than 2 instances known, fewer than half healthy flags a suspected partition for
-- 5 minutes. Counters are kept incrementally, so the rule is O(1) whatever the fleet size.
--
-- KEYS[1] gossip           cb:gossip:health          HASH    instance id -> healthy|unhealthy
-- KEYS[2] gossip_counts    cb:gossip:counts          HASH    total, healthy
-- KEYS[3] partition        cb:partition:detected     STRING  set while a partition is suspected
--
-- ARGV[1] instance_id      string
-- ARGV[2] status           string   healthy|unhealthy
--
-- Returns {code, payload}:
--   OK   payload = {"partitionDetected":bool,"healthy":n,"total":n}
--
-- Events: none
-- include: lib/instance.lua

local gossip_key, counts_key, partition_key = KEYS[1], KEYS[2], KEYS[3]
local instance_id, status = ARGV[1], ARGV[2]

gossip_set(gossip_key, counts_key, instance_id, status)
local counts = redis.call('HMGET', counts_key, 'total', 'healthy')
local total, healthy = tonumber(counts[1] or '0'), tonumber(counts[2] or '0')
local detected = total > 2 and healthy < total / 2
if detected then
  redis.call('SET', partition_key, '1', 'PX', 300000)
else
  redis.call('DEL', partition_key)
end
return {'OK', cjson.encode({partitionDetected = detected, healthy = healthy, total = total})}
