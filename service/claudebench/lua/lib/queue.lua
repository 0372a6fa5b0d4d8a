-- Helpers for named queues: per-queue status counters, fair dispatch and the multi-queue claim.
-- Prepended after lib/task.lua (they use pending_score, hand_over, append_event, ...).
--
-- A queue's keys travel in a table q: {name, pending, backlog, fair} (+ config, rate in claims).
-- Fair dispatch: a pending task with a fairness key (task field fairKey) is in the pending ZSET
-- only while it is its key's turn; the key's other pending tasks wait in the backlog ZSET (one
-- score, ordered by member: key, pending score, id). When a key's last task in the pending ZSET
-- leaves it, the key's next task moves from the backlog to the back of its priority in the pending
-- ZSET (score from a fresh seq). So keys take turns round-robin within a priority, every step is
-- O(log n), and tasks without a key keep their FIFO place.

local DEFAULT_QUEUE = 'default'

-- The queue a task belongs to (tasks written before named queues have no field: default).
local function task_queue(task_key)
  return redis.call('HGET', task_key, 'queue') or DEFAULT_QUEUE
end

-- Add delta to the queue's counter of tasks in `status` (pending is counted from the pending and
-- backlog ZSETs instead). Only named queues have counters ("<queue>|<status>", and their total
-- "*|<status>": no queue name contains '*'); the default queue's count is the status index's
-- length minus that total, so tasks written before named queues existed are counted too.
local function count_status(counts_key, queue, status, delta)
  if status ~= 'pending' and queue ~= DEFAULT_QUEUE then
    redis.call('HINCRBY', counts_key, queue .. '|' .. status, delta)
    redis.call('HINCRBY', counts_key, '*|' .. status, delta)
  end
end

-- How many tasks of the queue are IN_PROGRESS (idx_in_progress: the in-progress status index).
local function queue_in_progress(counts_key, idx_in_progress, queue)
  if queue == DEFAULT_QUEUE then
    local named = tonumber(redis.call('HGET', counts_key, '*|in_progress') or '0')
    return redis.call('ZCARD', idx_in_progress) - named
  end
  return tonumber(redis.call('HGET', counts_key, queue .. '|in_progress') or '0')
end

-- The backlog member prefix of a fairness key: its length, then the key (no key is a prefix of
-- another one's member).
local function fair_prefix(fair_key)
  return string.format('%05d', #fair_key) .. fair_key .. ':'
end

local function backlog_member(fair_key, priority, seq, task_id)
  return fair_prefix(fair_key) .. string.format('%016d', tonumber(pending_score(priority, seq))) ..
    ':' .. task_id
end

-- The fairness key's next task (highest priority, then oldest) from the backlog into the pending
-- ZSET, behind every task of its priority that is there now. seq_key: the creation counter.
local function promote_next(q, seq_key, fair_key)
  local prefix = fair_prefix(fair_key)
  local member = redis.call('ZRANGE', q.backlog, '[' .. prefix, '[' .. prefix .. '\255', 'BYLEX',
    'LIMIT', 0, 1)[1]
  if not member then
    return
  end
  redis.call('ZREM', q.backlog, member)
  local score = tonumber(string.sub(member, #prefix + 1, #prefix + 16))
  local task_id = string.sub(member, #prefix + 18)
  local fresh = redis.call('INCR', seq_key)
  redis.call('ZADD', q.pending, string.format('%.0f', math.floor(score / 1e13) * 1e13 + fresh), task_id)
  redis.call('HINCRBY', q.fair, fair_key, 1)
end

-- Put a pending task into its queue. A new task whose fairness key already has its turn in the
-- pending ZSET waits in the backlog; any other goes to the pending ZSET at its place (a task given
-- back by its holder keeps its place, even beside its key's turn).
local function enqueue(q, task_key, task_id, priority, seq, is_new)
  local fair_key = redis.call('HGET', task_key, 'fairKey')
  if fair_key then
    if is_new and tonumber(redis.call('HGET', q.fair, fair_key) or '0') > 0 then
      redis.call('ZADD', q.backlog, 0, backlog_member(fair_key, priority, seq, task_id))
      return
    end
    redis.call('HINCRBY', q.fair, fair_key, 1)
  end
  redis.call('ZADD', q.pending, pending_score(priority, seq), task_id)
end

-- Take a pending task out of its queue (handed over, deleted, or changing status or priority):
-- from the pending ZSET (passing its key's turn on) or from the backlog.
local function dequeue(q, seq_key, task_key, task_id)
  local t = redis.call('HMGET', task_key, 'fairKey', 'priority', 'seq')
  local fair_key = t[1]
  if redis.call('ZREM', q.pending, task_id) == 1 then
    if fair_key and redis.call('HINCRBY', q.fair, fair_key, -1) <= 0 then
      redis.call('HDEL', q.fair, fair_key)
      promote_next(q, seq_key, fair_key)
    end
  elseif fair_key then
    redis.call('ZREM', q.backlog, backlog_member(fair_key, t[2], t[3], task_id))
  end
end

-- How many tasks the queue may hand out now (paused, concurrency cap, rate limit), and when a
-- queue closed by its rate limit opens again (ms, 0 = not closed by it). The rate window slides:
-- at most rateLimit claims in any rateWindowMs; q.rate holds the claims of the current window.
local function queue_allowance(q, counts_key, idx_in_progress, now_ms)
  local c = redis.call('HMGET', q.config, 'paused', 'concurrencyLimit', 'rateLimit', 'rateWindowMs')
  if c[1] == '1' then
    return 0, 0
  end
  local allow = math.huge
  local limit = tonumber(c[2] or '0')
  if limit > 0 then
    allow = limit - queue_in_progress(counts_key, idx_in_progress, q.name)
  end
  local open_at = 0
  local rate = tonumber(c[3] or '0')
  if rate > 0 then
    local window = tonumber(c[4])
    redis.call('ZREMRANGEBYSCORE', q.rate, '-inf', now_ms - window)
    local left = rate - redis.call('ZCARD', q.rate)
    if left <= allow then
      allow = left
      if left <= 0 then
        open_at = tonumber(redis.call('ZRANGE', q.rate, 0, 0, 'WITHSCORES')[2]) + window
      end
    end
  end
  return math.max(allow, 0), open_at
end

-- Record one claim in the queue's rate window (member unique per task and time).
local function count_claim(q, task_id, now_ms)
  if redis.call('HGET', q.config, 'rateLimit') then
    redis.call('ZADD', q.rate, now_ms, task_id .. '@' .. now_ms)
    redis.call('PEXPIRE', q.rate, tonumber(redis.call('HGET', q.config, 'rateWindowMs')))
  end
end

-- The queues of a claim from KEYS[first_key..] (6 keys each: pending, backlog, fair, config, rate,
-- then the next queue) and ARGV[first_arg..] (name, candidate count each), then their candidates'
-- keys and ids. Returns the queue tables, each with cands = {{key, id}, ...}.
local function claim_queues(first_key, first_arg, nqueues)
  local queues = {}
  local key_at = first_key + 5 * nqueues
  local arg_at = first_arg + 2 * nqueues
  for i = 1, nqueues do
    local base = first_key + 5 * (i - 1)
    local q = {name = ARGV[first_arg + 2 * (i - 1)], pending = KEYS[base], backlog = KEYS[base + 1],
      fair = KEYS[base + 2], config = KEYS[base + 3], rate = KEYS[base + 4], cands = {}}
    for _ = 1, tonumber(ARGV[first_arg + 2 * (i - 1) + 1]) do
      q.cands[#q.cands + 1] = {KEYS[key_at], ARGV[arg_at]}
      key_at, arg_at = key_at + 1, arg_at + 1
    end
    queues[i] = q
  end
  return queues
end

-- Hand up to `want` pending tasks of the queues to worker_id: across queues, highest priority first,
-- then the lowest pending score's seq (oldest; a fairness key's turn counts from when it began);
-- within a queue strictly in its order (a candidate is taken only if every pending task before it
-- was a candidate and denied this worker). A paused queue, or one at its concurrency cap or rate
-- limit, hands out nothing. k: held, idx_pending, idx_in_progress, events, queue_metrics, seq,
-- counts. Returns the taken snapshots and a table: stale, denied, behind (a pending task not among
-- the candidates ranks before a queue's next candidate), more (a queue's candidates ran out while
-- it has more pending tasks), open_at (earliest reopening of a queue closed by its rate limit, 0 =
-- none).
local function claim_from_queues(queues, worker_id, want, now_ms, maxlen, event_type, k)
  local taken, stale, denied, behind, more, open_at = {}, 0, 0, false, false, 0
  for _, q in ipairs(queues) do
    q.allow, q.open_at = queue_allowance(q, k.counts, k.idx_in_progress, now_ms)
    q.at, q.denied = 1, 0
    if q.open_at > 0 and (open_at == 0 or q.open_at < open_at) then
      open_at = q.open_at
    end
  end
  while #taken < want and not behind and not more do
    -- Each open queue's next candidate that is still pending, in order (q.score caches it until
    -- the queue changes); the best one wins.
    local best = nil
    for _, q in ipairs(queues) do
      while q.allow > 0 and not q.score and q.at <= #q.cands do
        local score = redis.call('ZSCORE', q.pending, q.cands[q.at][2])
        if not score then
          stale, q.at = stale + 1, q.at + 1
        elseif redis.call('ZRANK', q.pending, q.cands[q.at][2]) ~= q.denied then
          behind = true
          break
        else
          q.score = tonumber(score)
        end
      end
      if q.allow > 0 and not q.score and q.at > #q.cands and redis.call('ZCARD', q.pending) > q.denied then
        more = true  -- this queue's next pending task was not passed: pass more candidates
      end
      if q.allow > 0 and q.score and (not best or q.score < best.score) then
        best = q
      end
    end
    if behind or more or not best then
      break
    end
    best.score = nil
    local task_key, task_id = best.cands[best.at][1], best.cands[best.at][2]
    best.at = best.at + 1
    if json_list_contains(redis.call('HGET', task_key, 'deny'), worker_id) then
      denied, best.denied = denied + 1, best.denied + 1
    else
      dequeue(best, k.seq, task_key, task_id)
      hand_over(task_key, task_id, worker_id, now_ms, k)
      count_status(k.counts, best.name, 'in_progress', 1)
      count_claim(best, task_id, now_ms)
      best.allow = best.allow - 1
      if best.allow == 0 and redis.call('HGET', best.config, 'rateLimit') then
        local _, reopen = queue_allowance(best, k.counts, k.idx_in_progress, now_ms)
        if reopen > 0 and (open_at == 0 or reopen < open_at) then
          open_at = reopen
        end
      end
      local snapshot = task_snapshot(task_key)
      append_event(k.events, maxlen, event_type, task_id, worker_id, now_ms, snapshot)
      taken[#taken + 1] = snapshot
    end
  end
  return taken, {stale = stale, denied = denied, behind = behind, more = more, open_at = open_at}
end

-- The reply of a claim: {"tasks":[...],"free":n,"stale":n,"denied":n,"behind":b,"more":b,
-- "pending":n,"open_at":ms,"heads":{queue:[ids]}[,"next_due":ms|null]}: pending = the queues' pending ZSETs' length
-- after the call, heads = each queue's first head_size ids, which the caller may pass as the next
-- claim's candidates without reading the queues first (re-checked, so a stale hint costs a retry);
-- next_due (with due_key) = the earliest run_at in the due index.
local function queues_claim_reply(queues, taken, free, r, head_size, due_key)
  local pending, heads = 0, {}
  for _, q in ipairs(queues) do
    pending = pending + redis.call('ZCARD', q.pending)
    local head = redis.call('ZRANGE', q.pending, 0, head_size - 1)
    local quoted = {}
    for i = 1, #head do
      quoted[i] = cjson.encode(head[i])
    end
    heads[#heads + 1] = cjson.encode(q.name) .. ':[' .. table.concat(quoted, ',') .. ']'
  end
  return {'OK', '{"tasks":[' .. table.concat(taken, ',') .. '],"free":' .. free ..
    ',"stale":' .. r.stale .. ',"denied":' .. r.denied .. ',"behind":' .. tostring(r.behind) ..
    ',"more":' .. tostring(r.more) .. ',"pending":' .. pending ..
    ',"open_at":' .. string.format('%.0f', r.open_at) .. ',"heads":{' .. table.concat(heads, ',') .. '}' ..
    (due_key and (',"next_due":' .. next_due_json(due_key)) or '') .. '}'}
end

-- The queue names a worker registered for (field queues, a JSON array; absent = ["default"]),
-- as the JSON text and as a set.
local function registered_queues(instance_key)
  local registered = redis.call('HGET', instance_key, 'queues') or '["default"]'
  local set = {}
  for _, name in ipairs(cjson.decode(registered)) do
    set[name] = true
  end
  return registered, set
end

-- A claim naming its queues: each must be one the worker registered for (else NOT_SUBSCRIBED).
local function unsubscribed(instance_key, worker_id, queues)
  local _, set = registered_queues(instance_key)
  for _, q in ipairs(queues) do
    if not set[q.name] then
      return {'NOT_SUBSCRIBED', 'Worker ' .. worker_id .. ' is not registered for queue ' .. q.name ..
        '; register with it in queues'}
    end
  end
  return nil
end

-- A claim from the worker's registered queues as the caller knew them: they must be exactly the
-- registered ones (else QUEUES_CHANGED with the registered list, for the caller to call again).
local function queues_changed(instance_key, queues)
  local registered, set = registered_queues(instance_key)
  for _, q in ipairs(queues) do
    if not set[q.name] then
      return {'QUEUES_CHANGED', registered}
    end
    set[q.name] = nil
  end
  if next(set) then
    return {'QUEUES_CHANGED', registered}
  end
  return nil
end

-- Give a held task back to its queue q at its original place (used when a holder releases it,
-- leaves, or is declared dead). The caller removes it from the holder's set.
-- k: idx_pending, idx_in_progress, counts.
local function requeue(q, task_key, task_id, now_ms, k)
  local task = redis.call('HMGET', task_key, 'seq', 'priority')
  redis.call('ZREM', k.idx_in_progress, task_id)
  redis.call('ZADD', k.idx_pending, task[1], task_id)
  enqueue(q, task_key, task_id, task[2], task[1], false)
  count_status(k.counts, q.name, 'in_progress', -1)
  redis.call('HDEL', task_key, 'assignedAt')
  redis.call('HSET', task_key, 'status', 'pending', 'assignedTo', '', 'updatedAt', now_ms)
end

-- Write a new task of queue q (the caller checked that its key is free) and append its event:
-- PENDING in its queue with a CREATED event, or, when extra.run_at is in the future, SCHEDULED in
-- the due index with a SCHEDULED event. metadata_pairs: key, JSON value, ... (stored as 'm:' fields;
-- the JSON text of fairness_key becomes the task's fairKey). k: all_tasks, idx_pending, events, seq,
-- queues (the queue registry), counts (and due, idx_scheduled when extra.run_at may be set).
-- q: name, pending, backlog, fair, all. extra (optional): {run_at = epoch ms or nil, fields =
-- {name, value, ...} more hash fields}. Returns its snapshot.
local function insert_task(q, task_key, task_id, text, priority, now_ms, metadata_pairs, maxlen, k, extra)
  extra = extra or {}
  local seq = redis.call('INCR', k.seq)
  local scheduled = extra.run_at ~= nil and tonumber(extra.run_at) > tonumber(now_ms)
  local fields = {'id', task_id, 'seq', seq, 'text', text, 'priority', priority,
    'status', scheduled and 'scheduled' or 'pending',
    'assignedTo', '', 'attempts', 0, 'createdAt', now_ms, 'updatedAt', now_ms}
  if q.name ~= DEFAULT_QUEUE then
    fields[#fields + 1] = 'queue'
    fields[#fields + 1] = q.name
  end
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
    if metadata_pairs[i] == 'fairness_key' then
      fields[#fields + 1] = 'fairKey'
      fields[#fields + 1] = metadata_pairs[i + 1]
    end
  end
  redis.call('HSET', task_key, unpack(fields))
  redis.call('ZADD', k.all_tasks, seq, task_id)
  redis.call('ZADD', q.all, seq, task_id)
  redis.call('ZADD', k.queues, 'NX', now_ms, q.name)
  if scheduled then
    redis.call('ZADD', k.due, extra.run_at, task_id)
    redis.call('ZADD', k.idx_scheduled, seq, task_id)
    count_status(k.counts, q.name, 'scheduled', 1)
  else
    enqueue(q, task_key, task_id, priority, seq, true)
    redis.call('ZADD', k.idx_pending, seq, task_id)
  end
  local snapshot = task_snapshot(task_key)
  append_event(k.events, maxlen, scheduled and 'scheduled' or 'created', task_id, '', now_ms, snapshot)
  return snapshot
end

-- Move a SCHEDULED task of queue q into its pending queue at its FIFO place (the caller checked
-- that it is scheduled). k: due, idx_scheduled, idx_pending, counts.
local function promote(q, task_key, task_id, now_ms, k)
  local task = redis.call('HMGET', task_key, 'seq', 'priority')
  redis.call('ZREM', k.due, task_id)
  redis.call('ZREM', k.idx_scheduled, task_id)
  redis.call('ZADD', k.idx_pending, task[1], task_id)
  enqueue(q, task_key, task_id, task[2], task[1], true)
  count_status(k.counts, q.name, 'scheduled', -1)
  redis.call('HDEL', task_key, 'runAt')
  redis.call('HSET', task_key, 'status', 'pending', 'updatedAt', now_ms)
end

-- The refusal for a caller that passed the keys of another queue than the task's (it guessed, or
-- the task was deleted and created again meanwhile): WRONG_QUEUE with the task's queue, to call
-- again with its keys. nil when the queue is right (or the task does not exist).
local function wrong_queue(task_key, queue)
  local actual = redis.call('HGET', task_key, 'queue') or DEFAULT_QUEUE
  if redis.call('EXISTS', task_key) == 1 and actual ~= queue then
    return {'WRONG_QUEUE', actual}
  end
  return nil
end

-- The held tasks passed to a departure script: KEYS[first_key..] 4 per task (task, its queue's
-- pending, backlog, fair) and ARGV[first_arg..] 2 per task (id, queue). nil when a task's queue
-- is not the one passed (the caller must read again).
local function held_tasks(first_key, first_arg)
  local held = {}
  for i = first_key, #KEYS, 4 do
    local a = first_arg + (i - first_key) / 2
    local t = {key = KEYS[i], id = ARGV[a], q = {name = ARGV[a + 1], pending = KEYS[i + 1],
      backlog = KEYS[i + 2], fair = KEYS[i + 3]}}
    if task_queue(t.key) ~= t.q.name then
      return nil
    end
    held[#held + 1] = t
  end
  return held
end

-- The lease and retry policy of a new task: its own; else (timeout '-1', max_attempts '-1') its
-- queue's defaultTimeoutMs / defaultRetry (config hash), else the server's defaults. Returns
-- timeout_ms, max_attempts, retry (policy JSON or '').
local function task_defaults(config_key, timeout, max_attempts, retry, server_timeout,
                             server_max_attempts, server_retry)
  if timeout == '-1' then
    timeout = redis.call('HGET', config_key, 'defaultTimeoutMs') or server_timeout
  end
  if max_attempts == '-1' then
    local policy = redis.call('HGET', config_key, 'defaultRetry')
    if policy then
      retry, max_attempts = policy, tostring(cjson.decode(policy).maxAttempts)
    else
      retry, max_attempts = server_retry, server_max_attempts
    end
  end
  return timeout, max_attempts, retry
end
