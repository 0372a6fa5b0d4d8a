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

-- Move a pending task to instance_id: out of the pending queue and index, into the in-progress
-- index and the instance's held set. The caller has checked that the task is pending. The first
-- hand-over records the task's wait (creation to hand-over) in the queue metrics. A task with a
-- timeout gets its lease: leaseDeadline = now + timeoutMs, in the leases index (k.leases).
local function hand_over(task_key, task_id, instance_id, now_ms, k)
  local task = redis.call('HMGET', task_key, 'seq', 'createdAt', 'attempts', 'timeoutMs', 'timedOutHolder')
  local seq = task[1]
  redis.call('ZREM', k.pending, task_id)
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

-- Take up to `want` of the candidates KEYS[first_key..] (their ids from ARGV[first_arg..]) that
-- are still pending and do not deny worker_id, appending one event_type event each, strictly in
-- queue order: a candidate is taken only if every pending task ranked before it was a candidate
-- too (and denied this worker). Returns the taken snapshots; how many candidates were stale (no
-- longer pending) or denied; and `behind`: true when a pending task the caller did not pass ranks
-- first (the candidates were read before it arrived), so the caller must pass the new head.
local function take_candidates(first_key, first_arg, worker_id, want, now_ms, maxlen, event_type, k)
  local taken, stale, denied, behind = {}, 0, 0, false
  for i = first_key, #KEYS do
    if #taken >= want then
      break
    end
    local task_key, task_id = KEYS[i], ARGV[i - first_key + first_arg]
    local rank = redis.call('ZRANK', k.pending, task_id)
    if not rank then
      stale = stale + 1
    elseif rank ~= denied then
      behind = true
      break
    elseif json_list_contains(redis.call('HGET', task_key, 'deny'), worker_id) then
      denied = denied + 1
    else
      hand_over(task_key, task_id, worker_id, now_ms, k)
      local snapshot = task_snapshot(task_key)
      append_event(k.events, maxlen, event_type, task_id, worker_id, now_ms, snapshot)
      taken[#taken + 1] = snapshot
    end
  end
  return taken, stale, denied, behind
end

-- The earliest run_at in the due index as JSON (a number, or null when nothing is scheduled).
local function next_due_json(due_key)
  local first = redis.call('ZRANGE', due_key, 0, 0, 'WITHSCORES')
  if first[2] then
    return string.format('%.0f', tonumber(first[2]))
  end
  return 'null'
end

-- How many ids of the head of the pending queue a claim-like reply carries (see claim_reply).
local HEAD_HINT = 64

-- The reply of a claim-like script: {"tasks":[...],"free":n,"stale":n,"denied":n,"behind":b,
-- "pending":n,"head":[ids]}: pending = the queue's length after the call, head = its first
-- HEAD_HINT ids, which the caller may pass as the next claim's candidates without reading the
-- queue first (this script re-checks them, so a stale hint costs a retry, never a wrong claim).
local function claim_reply(taken, free, stale, denied, behind, k)
  local head = redis.call('ZRANGE', k.pending, 0, HEAD_HINT - 1)
  local quoted = {}
  for i = 1, #head do
    quoted[i] = cjson.encode(head[i])
  end
  return {'OK', '{"tasks":[' .. table.concat(taken, ',') .. '],"free":' .. free ..
    ',"stale":' .. stale .. ',"denied":' .. denied .. ',"behind":' .. tostring(behind) ..
    ',"pending":' .. redis.call('ZCARD', k.pending) .. ',"head":[' .. table.concat(quoted, ',') .. ']' ..
    (k.due and (',"next_due":' .. next_due_json(k.due)) or '') .. '}'}
end

-- Give a held task back to the queue at its original place (used when a holder releases it,
-- leaves, or is declared dead). The caller removes it from the holder's set.
local function requeue(task_key, task_id, now_ms, k)
  local task = redis.call('HMGET', task_key, 'seq', 'priority')
  redis.call('ZREM', k.idx_in_progress, task_id)
  redis.call('ZADD', k.idx_pending, task[1], task_id)
  redis.call('ZADD', k.pending, pending_score(task[2], task[1]), task_id)
  redis.call('HDEL', task_key, 'assignedAt')
  redis.call('HSET', task_key, 'status', 'pending', 'assignedTo', '', 'updatedAt', now_ms)
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

-- Write a new task (the caller checked that its key is free) and append its event: PENDING with a
-- CREATED event, or, when extra.run_at is in the future, SCHEDULED in the due index with a
-- SCHEDULED event. metadata_pairs: metadata as key, JSON-value pairs ('m:' fields). k: pending,
-- all_tasks, idx_pending, events, seq (and due, idx_scheduled when extra.run_at may be set).
-- extra (optional): {run_at = epoch ms or nil, fields = {name, value, ...} more hash fields}.
-- Returns its snapshot.
local function insert_task(task_key, task_id, text, priority, now_ms, metadata_pairs, maxlen, k, extra)
  extra = extra or {}
  local seq = redis.call('INCR', k.seq)
  local scheduled = extra.run_at ~= nil and tonumber(extra.run_at) > tonumber(now_ms)
  local fields = {'id', task_id, 'seq', seq, 'text', text, 'priority', priority,
    'status', scheduled and 'scheduled' or 'pending',
    'assignedTo', '', 'attempts', 0, 'createdAt', now_ms, 'updatedAt', now_ms}
  if scheduled then
    fields[#fields + 1] = 'runAt'
    fields[#fields + 1] = extra.run_at
  end
  for _, item in ipairs(extra.fields or {}) do
    fields[#fields + 1] = item
  end
  for i = 1, #metadata_pairs - 1, 2 do
    fields[#fields + 1] = 'm:' .. metadata_pairs[i]
    fields[#fields + 1] = metadata_pairs[i + 1]
  end
  redis.call('HSET', task_key, unpack(fields))
  redis.call('ZADD', k.all_tasks, seq, task_id)
  if scheduled then
    redis.call('ZADD', k.due, extra.run_at, task_id)
    redis.call('ZADD', k.idx_scheduled, seq, task_id)
  else
    redis.call('ZADD', k.pending, pending_score(priority, seq), task_id)
    redis.call('ZADD', k.idx_pending, seq, task_id)
  end
  local snapshot = task_snapshot(task_key)
  append_event(k.events, maxlen, scheduled and 'scheduled' or 'created', task_id, '', now_ms, snapshot)
  return snapshot
end

-- Move a SCHEDULED task into the pending queue at its FIFO place (the caller checked that it is
-- scheduled). k: due, idx_scheduled, pending, idx_pending.
local function promote(task_key, task_id, now_ms, k)
  local task = redis.call('HMGET', task_key, 'seq', 'priority')
  redis.call('ZREM', k.due, task_id)
  redis.call('ZREM', k.idx_scheduled, task_id)
  redis.call('ZADD', k.idx_pending, task[1], task_id)
  redis.call('ZADD', k.pending, pending_score(task[2], task[1]), task_id)
  redis.call('HDEL', task_key, 'runAt')
  redis.call('HSET', task_key, 'status', 'pending', 'updatedAt', now_ms)
end
