-- TASK_CREATE_IDEMPOTENT: TASK_CREATE with an idempotency key. Within the key's window a create
-- with the same key returns the task the first one created (no new task, no event); after it (or
-- once that task is gone) the key is free again and a new task is created and recorded under it.
--
-- The key's record holds the first task's id, which the caller reads just before and passes
-- (expected_existing, and that task's key as KEYS[10]), so every key is declared; if the record
-- changed meanwhile (a concurrent create with the same key won), the script returns STALE without
-- writing and the caller reads again: of any number of concurrent creates with one key, one
-- creates the task and the others return it.
--
-- KEYS[1] task            cb:task:{id}               HASH    the new task record
-- KEYS[2] pending         cb:queue:{q}:pending       ZSET    the queue's pending tasks, score = pending_score(priority, seq)
-- KEYS[3] all_tasks       cb:tasks:all               ZSET    every task, score = seq
-- KEYS[4] idx_pending     cb:tasks:status:pending    ZSET    pending tasks, score = seq
-- KEYS[5] events          cb:stream:tasks            STREAM  task events
-- KEYS[6] seq             cb:seq:tasks               STRING  creation counter
-- KEYS[7] due             cb:queue:tasks:due         ZSET    scheduled tasks, score = run_at (ms)
-- KEYS[8] idx_scheduled   cb:tasks:status:scheduled  ZSET    scheduled tasks, score = seq
-- KEYS[9] idempotency     cb:idempotency:{sha256}    STRING  the first task's id, PX = the window
-- KEYS[10] existing       cb:task:{existing id}      HASH    the task the record names (as read),
--                                                            or KEYS[1] when it named none
-- KEYS[11] backlog        cb:queue:{q}:backlog       ZSET    fairness: tasks waiting for their key's turn
-- KEYS[12] fair           cb:queue:{q}:fair          HASH    fairness key -> its tasks in the pending ZSET
-- KEYS[13] queue_all      cb:queue:{q}:all           ZSET    the queue's tasks, score = seq
-- KEYS[14] queues         cb:queues                  ZSET    queue registry (name, first use ms)
-- KEYS[15] counts         cb:queues:counts           HASH    per-queue status counters
-- KEYS[16] config         cb:queue:{q}:config        HASH    the queue's settings (defaultTimeoutMs)
--
-- ARGV[1] task_id            string   unique id, validated by the caller
-- ARGV[2] text               string   1..500 characters
-- ARGV[3] priority           integer  0..100
-- ARGV[4] now_ms             integer  epoch milliseconds
-- ARGV[5] maxlen             integer  approximate retention of the event stream
-- ARGV[6] run_at             integer  epoch ms to run at; 0 (or not after now_ms) = now
-- ARGV[7] timeout_ms         integer  the lease a holder gets per attempt; 0 = none; -1 = the
--                                     queue's defaultTimeoutMs, else default_timeout_ms
-- ARGV[8] max_attempts       integer  hand-overs allowed; 1 = no retry; -1 (with retry '') = the
--                                     queue's defaultRetry, else the server's
-- ARGV[9] retry              string   the retry policy as JSON, '' = none
-- ARGV[10] idempotency_key   string   the client's key (stored on the task as idempotencyKey)
-- ARGV[11] window_ms         integer  how long the key names this task
-- ARGV[12] expected_existing string   the id the record held as the caller read it ('' = none)
-- ARGV[13] queue             string   the queue's name (validated by the caller)
-- ARGV[14] default_timeout_ms integer the server's default lease (0 = none)
-- ARGV[15] default_max_attempts integer the server's default attempts (1 = no retry)
-- ARGV[16] default_retry     string   the server's default policy as JSON ('' = none)
-- ARGV[17..] metadata        pairs    key, JSON-encoded value, ...
--
-- Returns {code, payload}:
--   OK              payload = {"task":snapshot,"created":bool}: created = false when the key's
--                   first task is returned (nothing written)
--   ALREADY_EXISTS  payload = message; task_id is taken (nothing written)
--   STALE           payload = message; the key's record changed since the caller read it
--
-- Events: CREATED or SCHEDULED when a task is created; none otherwise
-- include: lib/task.lua
-- include: lib/queue.lua

local task_key, idempotency_key, existing_key = KEYS[1], KEYS[9], KEYS[10]
local k = {all_tasks = KEYS[3], idx_pending = KEYS[4], events = KEYS[5], seq = KEYS[6],
  due = KEYS[7], idx_scheduled = KEYS[8], queues = KEYS[14], counts = KEYS[15]}
local q = {name = ARGV[13], pending = KEYS[2], backlog = KEYS[11], fair = KEYS[12], all = KEYS[13]}
local task_id, text, priority, now_ms, maxlen, run_at = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local key, window_ms, expected = ARGV[10], ARGV[11], ARGV[12]

local current = redis.call('GET', idempotency_key) or ''
if current ~= expected then
  return {'STALE', 'The idempotency key ' .. key .. ' changed while the task was being created'}
end
if current ~= '' and redis.call('EXISTS', existing_key) == 1 then
  return {'OK', '{"task":' .. task_snapshot(existing_key) .. ',"created":false}'}
end
if redis.call('EXISTS', task_key) == 1 then
  return {'ALREADY_EXISTS', 'Task ' .. task_id .. ' already exists'}
end
local metadata = {}
for i = 17, #ARGV do
  metadata[#metadata + 1] = ARGV[i]
end
local timeout, max_attempts, retry = task_defaults(KEYS[16], ARGV[7], ARGV[8], ARGV[9], ARGV[14],
  ARGV[15], ARGV[16])
local fields = lifecycle_fields(timeout, max_attempts, retry)
fields[#fields + 1] = 'idempotencyKey'
fields[#fields + 1] = key
local snapshot = insert_task(q, task_key, task_id, text, priority, now_ms, metadata, maxlen, k,
  {run_at = run_at, fields = fields})
redis.call('SET', idempotency_key, task_id, 'PX', window_ms)
return {'OK', '{"task":' .. snapshot .. ',"created":true}'}
