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

-- Move a pending task to instance_id: out of the pending queue and index, into the in-progress
-- index and the instance's held set. The caller has checked that the task is pending. The first
-- hand-over records the task's wait (creation to hand-over) in the queue metrics. `task`: the
-- task hash as a table (hash_to_table), when the caller read it already: it is read from there
-- and kept equal to the stored hash (every field written here is written to both).
local function hand_over(task_key, task_id, instance_id, now_ms, k, task)
  if not task then
    local f = redis.call('HMGET', task_key, 'seq', 'createdAt', 'attempts')
    task = {seq = f[1], createdAt = f[2], attempts = f[3]}
  end
  local seq, attempts = task.seq, tonumber(task.attempts or '0')
  redis.call('ZREM', k.pending, task_id)
  redis.call('ZREM', k.idx_pending, task_id)
  redis.call('ZADD', k.idx_in_progress, seq, task_id)
  redis.call('ZADD', k.held, seq, task_id)
  local changes = {status = 'in_progress', assignedTo = instance_id, assignedAt = now_ms,
    updatedAt = now_ms, attempts = tostring(attempts + 1)}
  local fields = {}
  for field, value in pairs(changes) do
    fields[#fields + 1] = field
    fields[#fields + 1] = value
    task[field] = value
  end
  redis.call('HSET', task_key, unpack(fields))
  if attempts == 0 then
    redis.call('HINCRBY', k.queue_metrics, 'waitTotalMs', tonumber(now_ms) - tonumber(task.createdAt))
    redis.call('HINCRBY', k.queue_metrics, 'waitCount', 1)
  end
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

-- Take up to `want` of the candidates KEYS[first_key..] (their ids from ARGV[first_arg..]) that
-- are still pending and do not deny worker_id, appending one event_type event each, strictly in
-- queue order: a candidate is taken only if every pending task ranked before it was a candidate
-- too (and denied this worker). Returns the taken snapshots; how many candidates were stale (no
-- longer pending) or denied; `behind`: true when a pending task the caller did not pass ranks
-- first (the candidates were read before it arrived), so the caller must pass the new head; and
-- `full`: true when the next task would have taken the reply past `budget` bytes (the bound of
-- its Task message, task_wire_bound; the taken ones use `used` bytes of it), so it was left.
local function take_candidates(first_key, first_arg, worker_id, want, now_ms, maxlen, event_type, k,
                               budget)
  local taken, stale, denied, behind, full, used = {}, 0, 0, false, false, 0
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
      -- The hand-over adds the holder, a time and a count: #worker_id + 64 covers them.
      local flat = redis.call('HGETALL', task_key)
      local size = task_wire_bound(flat, budget - used) + #worker_id + 64
      if used + size > budget then
        full = true
        break
      end
      used = used + size
      local task = hash_to_table(flat)
      hand_over(task_key, task_id, worker_id, now_ms, k, task)
      local snapshot = cjson.encode(task)  -- the hash as stored now (hand_over kept them equal)
      append_event(k.events, maxlen, event_type, task_id, worker_id, now_ms, snapshot)
      taken[#taken + 1] = snapshot
    end
  end
  return taken, stale, denied, behind, full, used
end

-- How many ids of the head of the pending queue a claim-like reply carries (see claim_reply).
local HEAD_HINT = 64

-- The reply of a claim-like script: {"tasks":[...],"free":n,"stale":n,"denied":n,"behind":b,
-- "pending":n,"head":[ids],"full":b,"bytes":n}: pending = the queue's length after the call,
-- head = its first HEAD_HINT ids, which the caller may pass as the next claim's candidates without
-- reading the queue first (this script re-checks them, so a stale hint costs a retry, never a
-- wrong claim); full and bytes as take_candidates' full and used.
local function claim_reply(taken, free, stale, denied, behind, k, full, used)
  local head = redis.call('ZRANGE', k.pending, 0, HEAD_HINT - 1)
  local quoted = {}
  for i = 1, #head do
    quoted[i] = cjson.encode(head[i])
  end
  return {'OK', '{"tasks":[' .. table.concat(taken, ',') .. '],"free":' .. free ..
    ',"stale":' .. stale .. ',"denied":' .. denied .. ',"behind":' .. tostring(behind) ..
    ',"pending":' .. redis.call('ZCARD', k.pending) .. ',"head":[' .. table.concat(quoted, ',') .. '],"full":' .. tostring(full or false) ..
    ',"bytes":' .. (used or 0) .. '}'}
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

-- Write a new pending task (the caller checked that its key is free) and append its CREATED event.
-- fields: extra hash fields (metadata as 'm:' fields). k: pending, all_tasks, idx_pending, events,
-- seq. Returns its snapshot.
local function insert_task(task_key, task_id, text, priority, now_ms, metadata_pairs, maxlen, k)
  local seq = redis.call('INCR', k.seq)
  local fields = {'id', task_id, 'seq', seq, 'text', text, 'priority', priority, 'status', 'pending',
    'assignedTo', '', 'attempts', 0, 'createdAt', now_ms, 'updatedAt', now_ms}
  for i = 1, #metadata_pairs - 1, 2 do
    fields[#fields + 1] = 'm:' .. metadata_pairs[i]
    fields[#fields + 1] = metadata_pairs[i + 1]
  end
  redis.call('HSET', task_key, unpack(fields))
  redis.call('ZADD', k.pending, pending_score(priority, seq), task_id)
  redis.call('ZADD', k.all_tasks, seq, task_id)
  redis.call('ZADD', k.idx_pending, seq, task_id)
  local snapshot = task_snapshot(task_key)
  append_event(k.events, maxlen, 'created', task_id, '', now_ms, snapshot)
  return snapshot
end
