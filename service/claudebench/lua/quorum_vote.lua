-- QUORUM_VOTE: one vote per instance per decision (a re-vote replaces it). Quorum is a majority of
-- agreeing votes: floor(total / 2) + 1 votes for the same value, total being total_instances or,
-- when not given, the live instances. Once reached the decision is fixed (later votes are not
-- recorded) and announced by exactly one quorum.decision.made event.
--
-- KEYS[1] votes            cb:quorum:{id}:votes      HASH    instance id -> value
-- KEYS[2] result           cb:quorum:{id}            HASH    decision, agreeing, total, reachedAt
-- KEYS[3] liveness         cb:instances:liveness     ZSET    instances by last seen
-- KEYS[4] system_events    cb:stream:system          STREAM  fleet events
--
-- ARGV[1] decision_id      string
-- ARGV[2] instance_id      string
-- ARGV[3] value            string   the value voted for
-- ARGV[4] total_instances  string   a positive integer, or '' for the live instances
-- ARGV[5] now_ms           integer  epoch milliseconds
-- ARGV[6] ttl_ms           integer  liveness TTL
-- ARGV[7] retention_ms     integer  how long votes and the decision are kept after the last vote
-- ARGV[8] system_maxlen    integer  approximate retention of the system event stream
--
-- Returns {code, payload}:
--   OK   payload = {"voted":bool,"reached":bool,"decision":s,"votes":n,"agreeing":n,"total":n}
--        agreeing = the votes for the leading value (the decision, once reached)
--
-- Events: system stream: quorum.decision.made (once per decision)

local votes_key, result_key, liveness_key, system_events_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local decision_id, instance_id, value = ARGV[1], ARGV[2], ARGV[3]
local now_ms, ttl_ms, retention_ms, system_maxlen =
  tonumber(ARGV[5]), tonumber(ARGV[6]), ARGV[7], ARGV[8]

local result = redis.call('HMGET', result_key, 'decision', 'agreeing', 'total')
if result[1] then
  return {'OK', cjson.encode({voted = false, reached = true, decision = result[1],
    votes = redis.call('HLEN', votes_key), agreeing = tonumber(result[2]), total = tonumber(result[3])})}
end

redis.call('HSET', votes_key, instance_id, value)
local total = tonumber(ARGV[4])
if not total then
  total = redis.call('ZCOUNT', liveness_key, now_ms - ttl_ms, '+inf')
end
local tally, leading, agreeing = {}, '', 0
for _, vote in ipairs(redis.call('HVALS', votes_key)) do
  tally[vote] = (tally[vote] or 0) + 1
  if tally[vote] > agreeing then
    leading, agreeing = vote, tally[vote]
  end
end
local votes = redis.call('HLEN', votes_key)
local reached = total > 0 and agreeing >= math.floor(total / 2) + 1
if reached then
  redis.call('HSET', result_key, 'decision', leading, 'agreeing', agreeing, 'total', total,
    'reachedAt', now_ms)
  redis.call('XADD', system_events_key, 'MAXLEN', '~', system_maxlen, '*',
    'type', 'quorum.decision.made', 'time', now_ms, 'data', cjson.encode({decisionId = decision_id,
      value = leading, voteCount = votes, agreeing = agreeing, total = total}))
end
redis.call('PEXPIRE', votes_key, retention_ms)
redis.call('PEXPIRE', result_key, retention_ms)
local decision = ''
if reached then
  decision = leading
end
return {'OK', cjson.encode({voted = true, reached = reached, decision = decision, votes = votes,
  agreeing = agreeing, total = total})}
