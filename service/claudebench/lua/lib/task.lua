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

-- An event's task snapshot larger than this (bytes of JSON) leaves out the task's result and
-- progress (GetTask has them), so that no event passes what the input limits allow besides them:
-- text, error and metadata (64 KiB as JSON, escaped once more in the snapshot), about 170 KiB.
local EVENT_TASK_BYTES = 128 * 1024

-- Append one task event, trimming the stream approximately to maxlen entries.
local function append_event(stream_key, maxlen, event_type, task_id, instance_id, now_ms, task_json)
  if task_json and #task_json > EVENT_TASK_BYTES then
    local task = cjson.decode(task_json)
    task.result, task.progress = nil, nil
    task_json = cjson.encode(task)
  end
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
-- leases index (k.leases). `task`: the task hash as a table (hash_to_table), when the caller read
-- it already: it is read from there and kept equal to the stored hash (every field written or
-- deleted here goes through `changes`, so both see it).
local function hand_over(task_key, task_id, instance_id, now_ms, k, task)
  if not task then
    local f = redis.call('HMGET', task_key, 'seq', 'createdAt', 'attempts', 'timeoutMs', 'timedOutHolder',
      'leaseDeadline')
    task = {seq = f[1], createdAt = f[2], attempts = f[3], timeoutMs = f[4] or nil,
      timedOutHolder = f[5] or nil, leaseDeadline = f[6] or nil}
  end
  local seq, attempts = task.seq, tonumber(task.attempts or '0')
  redis.call('ZREM', k.idx_pending, task_id)
  redis.call('ZADD', k.idx_in_progress, seq, task_id)
  redis.call('ZADD', k.held, seq, task_id)
  now_ms = string.format('%.0f', tonumber(now_ms))  -- as stored (the caller may pass a number)
  local changes = {status = 'in_progress', assignedTo = instance_id, assignedAt = now_ms,
    updatedAt = now_ms, attempts = tostring(attempts + 1)}
  local removed = {}
  if task.timedOutHolder == instance_id then
    removed[#removed + 1] = 'timedOutHolder'
  end
  local timeout = tonumber(task.timeoutMs or '0')
  if timeout > 0 then
    changes.leaseDeadline = string.format('%.0f', tonumber(now_ms) + timeout)
    redis.call('ZADD', k.leases, changes.leaseDeadline, task_id)
  elseif task.leaseDeadline then
    removed[#removed + 1] = 'leaseDeadline'
  end
  local fields = {}
  for field, value in pairs(changes) do
    fields[#fields + 1] = field
    fields[#fields + 1] = value
    task[field] = value
  end
  redis.call('HSET', task_key, unpack(fields))
  for _, field in ipairs(removed) do
    task[field] = nil
  end
  if #removed > 0 then
    redis.call('HDEL', task_key, unpack(removed))
  end
  if attempts == 0 then
    redis.call('HINCRBY', k.queue_metrics, 'waitTotalMs', tonumber(now_ms) - tonumber(task.createdAt))
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

-- An upper bound of the protobuf size of a JSON value (metadata values, results) as a
-- google.protobuf.Value, framing included: every atom (key, value, container) costs at most 12
-- bytes beyond its JSON text, and there are at most one more atoms than separators (, : [ {)
-- outside strings. Strings are collapsed first (escapes dropped, then each "..." to one quote).
-- `room`: as task_wire_bound's (a cheap bound is returned when it stays within room).
local function json_wire_bound(text, room)
  local cheap = #text + 12 * (#text + 2)  -- as if every byte were a separator
  if room and cheap <= room then
    return cheap
  end
  local plain = string.gsub(text, '\\.', '')
  plain = string.gsub(plain, '"[^"]*"', '"')
  local _, separators = string.gsub(plain, '[,:%[{]', '')
  return #text + 12 * (separators + 2)
end

-- Task hash fields that hold JSON (besides the m: metadata fields).
local JSON_FIELDS = {result = true, progress = true}

-- An upper bound of the protobuf size of the Task message of a task hash (flat HGETALL reply),
-- including its framing in a repeated field of a reply (api/budget.py). `room`: the caller only
-- needs to know whether the bound stays within room bytes; a bound above it may be returned
-- without the exact count (a cheap first pass: every byte of a JSON value costs at most 13).
local function task_wire_bound(flat, room)
  local bytes, json_bytes, json_count = 64, 0, 0
  for i = 1, #flat, 2 do
    local field, value = flat[i], flat[i + 1]
    bytes = bytes + #field + #value + 12
    local b1, b2 = string.byte(field, 1, 2)
    if (b1 == 109 and b2 == 58) or JSON_FIELDS[field] then  -- 'm:' (metadata), result, progress
      json_bytes, json_count = json_bytes + #value, json_count + 1
    end
  end
  local cheap = bytes + 12 * (json_bytes + 2 * json_count)
  if json_count == 0 or (room and cheap <= room) then
    return cheap
  end
  for i = 1, #flat, 2 do
    local field, value = flat[i], flat[i + 1]
    local b1, b2 = string.byte(field, 1, 2)
    if (b1 == 109 and b2 == 58) or JSON_FIELDS[field] then
      bytes = bytes + json_wire_bound(value) - #value - 12
    end
  end
  return bytes
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
