-- TASK_CREATE: create a task, queue it as pending in its queue and append a CREATED event; or,
-- with a run_at in the future, keep it SCHEDULED in the due index (not claimable) and append a
-- SCHEDULED event.
--
-- KEYS[1] task            cb:task:{id}               HASH    the new task record
-- KEYS[2] pending         cb:queue:{q}:pending       ZSET    the queue's pending tasks, score = pending_score(priority, seq)
-- KEYS[3] all_tasks       cb:tasks:all               ZSET    every task, score = seq
-- KEYS[4] idx_pending     cb:tasks:status:pending    ZSET    pending tasks, score = seq
-- KEYS[5] events          cb:stream:tasks            STREAM  task events
-- KEYS[6] seq             cb:seq:tasks               STRING  creation counter (orders FIFO within a priority)
-- KEYS[7] due             cb:queue:tasks:due         ZSET    scheduled tasks, score = run_at (ms)
-- KEYS[8] idx_scheduled   cb:tasks:status:scheduled  ZSET    scheduled tasks, score = seq
-- KEYS[9] backlog         cb:queue:{q}:backlog       ZSET    fairness: tasks waiting for their key's turn
-- KEYS[10] fair           cb:queue:{q}:fair          HASH    fairness key -> its tasks in the pending ZSET
-- KEYS[11] queue_all      cb:queue:{q}:all           ZSET    the queue's tasks, score = seq
-- KEYS[12] queues         cb:queues                  ZSET    queue registry (name, first use ms)
-- KEYS[13] counts         cb:queues:counts           HASH    per-queue status counters
-- KEYS[14] config         cb:queue:{q}:config        HASH    the queue's settings (its task defaults)
--
-- ARGV[1] task_id         string   unique id, validated by the caller
-- ARGV[2] text            string   1..500 characters
-- ARGV[3] priority        integer  0..100
-- ARGV[4] now_ms          integer  epoch milliseconds
-- ARGV[5] maxlen          integer  approximate retention of the event stream
-- ARGV[6] run_at          integer  epoch ms to run at; 0 (or not after now_ms) = now
-- ARGV[7] timeout_ms      integer  the lease a holder gets per attempt (timeoutMs); 0 = none;
--                                  -1 = the queue's defaultTimeoutMs, else default_timeout_ms
-- ARGV[8] max_attempts    integer  hand-overs allowed (maxAttempts, stored when > 1); 1 = no retry;
--                                  -1 (with retry '') = the queue's defaultRetry, else the server's
-- ARGV[9] retry           string   the retry policy as JSON (retry), '' = none
-- ARGV[10] queue          string   the queue's name (validated by the caller)
-- ARGV[11] default_timeout_ms integer the server's default lease (0 = none)
-- ARGV[12] default_max_attempts integer the server's default attempts (1 = no retry)
-- ARGV[13] default_retry  string   the server's default policy as JSON ('' = none)
-- ARGV[14..] metadata     pairs    key, JSON-encoded value, key, JSON-encoded value, ...
--
-- Returns {code, payload}:
--   OK              payload = the task snapshot (JSON object of the task hash; status pending or
--                   scheduled)
--   ALREADY_EXISTS  payload = message; nothing was written
--
-- Events: CREATED, or SCHEDULED for a task created for later
-- include: lib/task.lua
-- include: lib/queue.lua

local task_key = KEYS[1]
local k = {all_tasks = KEYS[3], idx_pending = KEYS[4], events = KEYS[5], seq = KEYS[6],
  due = KEYS[7], idx_scheduled = KEYS[8], queues = KEYS[12], counts = KEYS[13]}
local task_id, text, priority, now_ms, maxlen, run_at = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local q = {name = ARGV[10], pending = KEYS[2], backlog = KEYS[9], fair = KEYS[10], all = KEYS[11]}

if redis.call('EXISTS', task_key) == 1 then
  return {'ALREADY_EXISTS', 'Task ' .. task_id .. ' already exists'}
end
local metadata = {}
for i = 14, #ARGV do
  metadata[#metadata + 1] = ARGV[i]
end
local timeout, max_attempts, retry = task_defaults(KEYS[14], ARGV[7], ARGV[8], ARGV[9], ARGV[11],
  ARGV[12], ARGV[13])
return {'OK', insert_task(q, task_key, task_id, text, priority, now_ms, metadata, maxlen, k,
  {run_at = run_at, fields = lifecycle_fields(timeout, max_attempts, retry)})}
