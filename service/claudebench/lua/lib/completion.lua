-- Finishing a held task: shared by TASK_COMPLETE and TASK_COMPLETE_BATCH (prepended after
-- lib/task.lua and lib/metrics.lua).

-- Whether worker_id may finish the task with this outcome: nil (yes), 'replay' (it already did,
-- with the same outcome and value: return the stored task, write nothing), or the {code, message}
-- refusal (another worker finished it, or this one did with another outcome; it was cancelled; its
-- lease ran out).
local function completion_refusal(task_key, task_id, worker_id, outcome, value, now_ms)
  local task = redis.call('HMGET', task_key, 'status', 'assignedTo', 'result', 'error',
    'leaseDeadline', 'timedOutHolder', 'cancelledHolder', 'failedHolder')
  local status, assigned_to = task[1], task[2] or ''
  if not status then
    return {'NOT_FOUND', 'Task ' .. task_id .. ' does not exist'}
  end
  if task[6] == worker_id then  -- cleared when this worker is handed the task again
    return {'NOT_HELD', 'Task ' .. task_id .. ' is no longer held by ' .. worker_id ..
      ': its lease expired (the timeout ran out) and it was taken back (status ' .. status .. ')'}
  end
  if status == 'scheduled' and task[8] == worker_id and outcome == 'error' and task[4] == value then
    return 'replay'  -- this worker's failure, already scheduled for a retry
  end
  if status == 'completed' or status == 'failed' then
    if assigned_to ~= worker_id then
      return {'ALREADY_FINISHED', 'Task ' .. task_id .. ' is already ' .. status}
    end
    if (outcome == 'result' and status == 'completed' and task[3] == value)
        or (outcome == 'error' and status == 'failed' and task[4] == value) then
      return 'replay'
    end
    return {'ALREADY_FINISHED', 'Task ' .. task_id .. ' is already ' .. status ..
      ' with another outcome; a retry must repeat the first completion exactly'}
  end
  if status == 'in_progress' and assigned_to == worker_id and task[5]
      and tonumber(now_ms) > tonumber(task[5]) then
    return {'NOT_HELD', 'Task ' .. task_id .. ' is no longer held by ' .. worker_id ..
      ': its lease expired at ' .. task[5] .. ' (epoch ms) before this completion'}
  end
  if status == 'cancelled' and task[7] == worker_id then
    return {'NOT_HELD', 'Task ' .. task_id .. ' was cancelled while ' .. worker_id ..
      ' held it; stop working on it'}
  end
  if status ~= 'in_progress' or assigned_to ~= worker_id then
    local holder = 'nobody'
    if assigned_to ~= '' then
      holder = assigned_to
    end
    return {'NOT_HELD', 'Task ' .. task_id .. ' is not held by ' .. worker_id .. ' (status ' ..
      status .. ', held by ' .. holder .. ')'}
  end
  return nil
end

-- Finish a task the worker holds (checked by completion_refusal) with a result or an error;
-- move it between the indexes, count it, append its event. An error with retry_at > 0 (attempts
-- left, computed by the caller from the task's retry policy) schedules a retry instead: SCHEDULED at
-- retry_at in the due index, event SCHEDULED. Returns its snapshot.
-- k: idx_in_progress, idx_completed, idx_failed, idx_scheduled, due, events, queue_metrics,
-- throughput, finished_completed, finished_failed, counts.
local function finish_task(task_key, held_key, instance_key, task_id, worker_id, outcome, value,
                           now_ms, maxlen, k, retry_at)
  if outcome == 'error' and tonumber(retry_at or '0') > 0 then
    redis.call('HDEL', task_key, 'assignedAt', 'leaseDeadline')
    redis.call('HSET', task_key, 'status', 'scheduled', 'error', value, 'runAt', retry_at,
      'assignedTo', '', 'failedHolder', worker_id, 'updatedAt', now_ms)
    redis.call('ZREM', held_key, task_id)
    redis.call('ZREM', k.idx_in_progress, task_id)
    redis.call('ZADD', k.idx_scheduled, redis.call('HGET', task_key, 'seq'), task_id)
    redis.call('ZADD', k.due, retry_at, task_id)
    count_status(k.counts, task_queue(task_key), 'in_progress', -1)
    count_status(k.counts, task_queue(task_key), 'scheduled', 1)
    if redis.call('EXISTS', instance_key) == 1 then
      redis.call('HINCRBY', instance_key, 'tasksFailed', 1)
    end
    local snapshot = task_snapshot(task_key)
    append_event(k.events, maxlen, 'scheduled', task_id, worker_id, now_ms, snapshot)
    return snapshot
  end
  local final_status, idx_key, counter, finished_key =
    'completed', k.idx_completed, 'tasksCompleted', k.finished_completed
  if outcome == 'error' then
    final_status, idx_key, counter, finished_key = 'failed', k.idx_failed, 'tasksFailed', k.finished_failed
    redis.call('HSET', task_key, 'error', value)
  else
    redis.call('HSET', task_key, 'result', value)
  end
  redis.call('HSET', task_key, 'status', final_status, 'completedAt', now_ms, 'updatedAt', now_ms)
  redis.call('ZREM', held_key, task_id)
  redis.call('ZREM', k.idx_in_progress, task_id)
  redis.call('ZADD', idx_key, redis.call('HGET', task_key, 'seq'), task_id)
  redis.call('ZADD', finished_key, now_ms, task_id)
  redis.call('HINCRBY', k.queue_metrics, final_status, 1)
  local queue = task_queue(task_key)
  count_status(k.counts, queue, 'in_progress', -1)
  count_status(k.counts, queue, final_status, 1)
  count_finished(k.throughput, now_ms)
  if redis.call('EXISTS', instance_key) == 1 then  -- never recreate an unregistered instance
    redis.call('HINCRBY', instance_key, counter, 1)
  end
  local snapshot = task_snapshot(task_key)
  append_event(k.events, maxlen, final_status, task_id, worker_id, now_ms, snapshot)
  return snapshot
end
