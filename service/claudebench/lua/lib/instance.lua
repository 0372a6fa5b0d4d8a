-- Helpers shared by the instance scripts (prepended by the registry, see lib/task.lua).

-- Renew the leader lease if instance_id holds it, take it if nobody does.
-- Returns became_leader, is_leader.
local function renew_or_take_leadership(leader_key, instance_id, ttl_ms)
  local leader = redis.call('GET', leader_key)
  if leader == instance_id then
    redis.call('PEXPIRE', leader_key, ttl_ms)
    return false, true
  end
  if not leader then
    redis.call('SET', leader_key, instance_id, 'PX', ttl_ms)
    return true, true
  end
  return false, false
end

-- Record (status) or forget (status nil) an instance in the gossip table, keeping the healthy and
-- total counters in step, so the partition rule never has to read the whole table.
local function gossip_set(gossip_key, counts_key, instance_id, status)
  local old = redis.call('HGET', gossip_key, instance_id)
  if old == (status or false) then
    return
  end
  if old then
    redis.call('HINCRBY', counts_key, 'total', -1)
    if old == 'healthy' then
      redis.call('HINCRBY', counts_key, 'healthy', -1)
    end
  end
  if status then
    redis.call('HSET', gossip_key, instance_id, status)
    redis.call('HINCRBY', counts_key, 'total', 1)
    if status == 'healthy' then
      redis.call('HINCRBY', counts_key, 'healthy', 1)
    end
  else
    redis.call('HDEL', gossip_key, instance_id)
  end
end

-- Append a fleet event (instance.failed, batch.completed, ...) to the system event stream.
local function append_system_event(stream_key, maxlen, event_type, now_ms, payload_json)
  return redis.call('XADD', stream_key, 'MAXLEN', '~', maxlen, '*',
    'type', event_type, 'time', now_ms, 'data', payload_json)
end

-- True when the instance's held set holds exactly the ids passed from first_arg on, every
-- `step`-th argument (the caller read the set before the call; a change since then means it must
-- read again).
local function held_matches(held_key, first_arg, step)
  if redis.call('ZCARD', held_key) * step ~= #ARGV - first_arg + 1 then
    return false
  end
  for i = first_arg, #ARGV, step do
    if not redis.call('ZSCORE', held_key, ARGV[i]) then
      return false
    end
  end
  return true
end

-- Forget a departing instance everywhere except its hash: liveness, held set, leader lease, gossip.
local function retire_instance(instance_id, k)
  redis.call('ZREM', k.liveness, instance_id)
  redis.call('DEL', k.held)
  if redis.call('GET', k.leader) == instance_id then
    redis.call('DEL', k.leader)
  end
  gossip_set(k.gossip, k.gossip_counts, instance_id, nil)
end
