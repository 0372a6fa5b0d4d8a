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
