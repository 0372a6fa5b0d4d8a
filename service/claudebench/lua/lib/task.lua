-- Helpers shared by the task scripts. A script names this file in an "-- include:" line of its header
-- and the registry (service/claudebench/scripts/registry.py) prepends it when loading, so every script
-- that Redis runs is still one self-contained chunk.

-- HGETALL's flat {field, value, ...} reply as a table.
local function hash_to_table(flat)
  local t = {}
  for i = 1, #flat, 2 do
    t[flat[i]] = flat[i + 1]
  end
  return t
end

-- The task hash as a JSON object. Every value is a string, so cjson's number handling never applies.
local function task_snapshot(task_key)
  return cjson.encode(hash_to_table(redis.call('HGETALL', task_key)))
end

-- One score orders the pending queue: higher priority first, then creation order (seq).
-- (100 - priority) * 1e13 + seq stays far below 2^53, so the double holds it exactly; '%.0f' keeps
-- every digit where tostring would round to 14 significant digits.
local function pending_score(priority, seq)
  return string.format('%.0f', (100 - tonumber(priority)) * 1e13 + tonumber(seq))
end

-- Append one task event, trimming the stream approximately to maxlen entries.
local function append_event(stream_key, maxlen, event_type, task_id, instance_id, now_ms, task_json)
  if task_json then
    return redis.call('XADD', stream_key, 'MAXLEN', '~', maxlen, '*',
      'type', event_type, 'task_id', task_id, 'instance_id', instance_id, 'time', now_ms,
      'task', task_json)
  end
  return redis.call('XADD', stream_key, 'MAXLEN', '~', maxlen, '*',
    'type', event_type, 'task_id', task_id, 'instance_id', instance_id, 'time', now_ms)
end

-- True when the JSON array text (nil/false/'' = empty) contains value.
local function json_list_contains(json_text, value)
  if not json_text or json_text == '' then
    return false
  end
  for _, item in ipairs(cjson.decode(json_text)) do
    if item == value then
      return true
    end
  end
  return false
end

-- The capacity of a registered, live instance, or nil plus the {code, message} reply to return.
local function live_instance_capacity(instance_key, instance_id, now_ms, ttl_ms)
  local f = redis.call('HMGET', instance_key, 'status', 'lastSeen', 'maxTasks')
  if not f[1] then
    return nil, {'INSTANCE_NOT_REGISTERED',
      'Instance ' .. instance_id .. ' is not registered; call Register first'}
  end
  if f[1] ~= 'active' or tonumber(now_ms) - tonumber(f[2]) > tonumber(ttl_ms) then
    return nil, {'INSTANCE_OFFLINE',
      'Instance ' .. instance_id .. ' is offline (no heartbeat within the liveness TTL); register again'}
  end
  return tonumber(f[3])
end

-- Move a pending task (already taken out of its queue by dequeue) to instance_id: out of the
-- pending index, into the in-progress index and the instance's held set. The caller has checked
-- that the task is pending. The first hand-over records the task's wait (creation to hand-over) in
-- the queue metrics. A task with a timeout gets its lease: leaseDeadline = now + timeoutMs, in the
-- leases index (k.leases).
local function hand_over(task_key, task_id, instance_id, now_ms, k)
  local task = redis.call('HMGET', task_key, 'seq', 'createdAt', 'attempts', 'timeoutMs', 'timedOutHolder')
  local seq = task[1]
  redis.call('ZREM', k.idx_pending, task_id)
  redis.call('ZADD', k.idx_in_progress, seq, task_id)
  redis.call('ZADD', k.held, seq, task_id)
  redis.call('HSET', task_key, 'status', 'in_progress', 'assignedTo', instance_id,
    'assignedAt', now_ms, 'updatedAt', now_ms)
  redis.call('HINCRBY', task_key, 'attempts', 1)
  if task[5] == instance_id then
    redis.call('HDEL', task_key, 'timedOutHolder')
  end
  local timeout = tonumber(task[4] or '0')
  if timeout > 0 then
    local deadline = string.format('%.0f', tonumber(now_ms) + timeout)
    redis.call('HSET', task_key, 'leaseDeadline', deadline)
    redis.call('ZADD', k.leases, deadline, task_id)
  else
    redis.call('HDEL', task_key, 'leaseDeadline')
  end
  if tonumber(task[3] or '0') == 0 then
    redis.call('HINCRBY', k.queue_metrics, 'waitTotalMs', tonumber(now_ms) - tonumber(task[2]))
    redis.call('HINCRBY', k.queue_metrics, 'waitCount', 1)
  end
end

-- The earliest run_at in the due index as JSON (a number, or null when nothing is scheduled).
local function next_due_json(due_key)
  local first = redis.call('ZRANGE', due_key, 0, 0, 'WITHSCORES')
  if first[2] then
    return string.format('%.0f', tonumber(first[2]))
  end
  return 'null'
end

-- The lifecycle fields of a new task as a flat {name, value, ...} list: timeoutMs (when > 0),
-- maxAttempts (when > 1), retry (the policy JSON, when not '').
local function lifecycle_fields(timeout_ms, max_attempts, retry)
  local fields = {}
  if tonumber(max_attempts) > 1 then
    fields[#fields + 1] = 'maxAttempts'
    fields[#fields + 1] = max_attempts
  end
  if tonumber(timeout_ms) > 0 then
    fields[#fields + 1] = 'timeoutMs'
    fields[#fields + 1] = timeout_ms
  end
  if retry ~= '' then
    fields[#fields + 1] = 'retry'
    fields[#fields + 1] = retry
  end
  return fields
end
