import { luaAppend } from "../audit/redis-audit-log";
import { RECORD_FRAME_LUA } from "../outbox/redis-outbox";

/*
 * Layout under the prefix of each scheduling shard (lib/outbox/redis-outbox.ts `shardPrefix`; one
 * shard on a single Redis, where the prefix is the deployment's own):
 *   task:{id}            hash: doc (JSON of the immutable message), status, attempts, token, queue,
 *                        score, created_ms, updated_at, result, error, claim_frame (until the task ends)
 *   queue:{type}:{tenant} sorted set of pending ids by score (priority, then submission order)
 *   ready                sorted set of non-empty queues by round-robin turn (fairness across tenants)
 *   leases               sorted set of processing ids by lease deadline
 *   delayed              sorted set of ids waiting for a retry by due time
 *   seq, turn            counters
 *   outbox, outbox:dropped  the shard's notification frames (RedisOutbox)
 * A tenant's tasks all live in one shard (`shardOf`); on a cluster the shard prefix is a hash tag, so
 * every script runs in one slot. With several shards, `task-shard:{id}` (outside any shard) names
 * the tenant of a task id, so `get` and `cancel` find it and an id is taken once across tenants.
 * Scripts touch only scalar fields (no JSON decoding in Lua, except to build a dead letter's frame
 * and the claim frame of a task stored without its template), and every status change checks the
 * current status and lease token first (compare-and-set). A status change records its notification
 * frame in the outbox within the same script (RECORD_FRAME_LUA). The frame of a claim ("attempt N")
 * is built from `claim_frame`, stored at submission: the frame's JSON with NUL bytes where the claim's
 * time and the attempt number go, so the script only concatenates.
 * CLAIM and REAP also touch the queue and task keys they find in the shard's sets: keys of the same
 * hash tag, so of the same slot. On a single Redis (one shard), SUBMIT_AUDITED and FINISH_AUDITED
 * also append an audit entry to the tenant's stream (RedisAuditLog), passed among their keys; on a
 * cluster that stream is in another slot and is appended to on its own.
 */

/**
 * KEYS[1..5] task, its queue, ready, seq, turn; ARGV[1..7] doc, id, queue, priority, created_ms,
 * updated_at, claim frame template. Audited: KEYS[6] the tenant's audit stream, ARGV[8..10] the entry
 * (RedisAuditLog.scriptArgs), appended only when the task is created, and first: Redis does not undo
 * a script's earlier writes when a later command fails.
 */
const submitScript = (audited: boolean) => `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
${audited ? luaAppend(6, 8) : ""}
local seq = redis.call('INCR', KEYS[4])
local score = string.format('%.0f', (9 - tonumber(ARGV[4])) * 1099511627776 + seq)
redis.call('HSET', KEYS[1], 'doc', ARGV[1], 'status', 'pending', 'attempts', 0, 'token', '',
  'queue', ARGV[3], 'score', score, 'created_ms', ARGV[5], 'updated_at', ARGV[6], 'result', '', 'error', '',
  'claim_frame', ARGV[7])
redis.call('ZADD', KEYS[2], score, ARGV[2])
if not redis.call('ZSCORE', KEYS[3], ARGV[3]) then
  redis.call('ZADD', KEYS[3], redis.call('INCR', KEYS[5]), ARGV[3])
end
return 1
`;
export const SUBMIT = submitScript(false);
export const SUBMIT_AUDITED = submitScript(true);

/** A frame built from a task's stored message, for `data_of(tool_id)` as its data. */
const DOC_FRAME_LUA = `
local function doc_frame(tkey, id, event, timestamp, data_of)
  local doc = cjson.decode(redis.call('HGET', tkey, 'doc'))
  local metadata = type(doc.metadata) == 'table' and doc.metadata or {}
  local payload = type(doc.payload) == 'table' and doc.payload or {}
  return cjson.encode({ event = event, service = 'tool-registry', task_id = id,
    global_task_id = metadata.global_task_id or cjson.null, tenant_id = doc.tenant_id, timestamp = timestamp,
    data = data_of(payload.tool_id or cjson.null) })
end
`;

/**
 * KEYS[1..3] ready, leases, turn; KEYS[4..5] outbox, dropped; ARGV[6..8] outbox max, channel, most
 * tasks to claim. Answers, per claimed task, its id, doc, status, attempts, updated_at, result and error.
 * Ten ids that are no longer pending (a stale entry) may be skipped besides.
 */
export const CLAIM = `${RECORD_FRAME_LUA}${DOC_FRAME_LUA}
local function claim_frame(tkey, id, template, attempts, at)
  if template and template ~= '' then
    local a = string.find(template, '\\0', 1, true)
    local b = string.find(template, '\\0', a + 1, true)
    return string.sub(template, 1, a - 1) .. at .. string.sub(template, a + 1, b - 1) .. attempts ..
      string.sub(template, b + 1)
  end
  -- Queued by a release that stored no template.
  return doc_frame(tkey, id, 'task_status_update', at, function(tool_id)
    return { status = 'processing', details = { tool_id = tool_id, message = 'attempt ' .. attempts } }
  end)
end
local claimed, max = {}, tonumber(ARGV[8])
for _ = 1, max + 10 do
  if #claimed == max then break end
  local picked = redis.call('ZRANGE', KEYS[1], 0, 0)
  if #picked == 0 then break end
  local queue = picked[1]
  local qkey = ARGV[1] .. 'queue:' .. queue
  local popped = redis.call('ZPOPMIN', qkey)
  if redis.call('ZCARD', qkey) == 0 then
    redis.call('ZREM', KEYS[1], queue)
  else
    redis.call('ZADD', KEYS[1], redis.call('INCR', KEYS[3]), queue)
  end
  if #popped > 0 then
    local id = popped[1]
    local tkey = ARGV[1] .. 'task:' .. id
    -- One read and one write of the task's hash: the row answered is what they leave.
    local task = redis.call('HMGET', tkey, 'status', 'attempts', 'claim_frame', 'doc', 'result', 'error')
    if task[1] == 'pending' then
      local attempts = tostring((tonumber(task[2]) or 0) + 1)
      redis.call('HSET', tkey, 'status', 'processing', 'token', ARGV[4], 'updated_at', ARGV[5], 'attempts', attempts)
      redis.call('ZADD', KEYS[2], tonumber(ARGV[2]) + tonumber(ARGV[3]), id)
      record_frame(KEYS[4], KEYS[5], ARGV[7], ARGV[6], claim_frame(tkey, id, task[3], attempts, ARGV[5]))
      table.insert(claimed, { id, task[4], 'processing', attempts, ARGV[5], task[5], task[6] })
    end
  end
end
return claimed
`;

/** Whether the task at `tkey` is processing under the lease `token`: the compare of every later change. */
const OWNED_LUA = `
local function owned(tkey, token)
  local task = redis.call('HMGET', tkey, 'status', 'token')
  return task[1] == 'processing' and task[2] == token
end
`;

export const EXTEND = `${OWNED_LUA}
if not owned(KEYS[1], ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[2], 'XX', ARGV[2], ARGV[3])
return 1
`;

/**
 * KEYS[1..2] task, leases; KEYS[3..4] outbox, dropped; ARGV[8..10] frame, outbox max, channel. Audited:
 * KEYS[5] the tenant's audit stream, ARGV[11..13] the run's entry, appended even when the lease was
 * lost (the run happened).
 */
const finishScript = (audited: boolean) => `${RECORD_FRAME_LUA}${OWNED_LUA}
${audited ? luaAppend(5, 11) : ""}
if not owned(KEYS[1], ARGV[1]) then return false end
redis.call('HSET', KEYS[1], 'status', ARGV[2], 'result', ARGV[3], 'error', ARGV[4], 'updated_at', ARGV[5], 'token', '')
redis.call('HDEL', KEYS[1], 'claim_frame')
redis.call('ZREM', KEYS[2], ARGV[7])
redis.call('EXPIRE', KEYS[1], ARGV[6])
record_frame(KEYS[3], KEYS[4], ARGV[10], ARGV[9], ARGV[8])
return 1
`;
export const FINISH = finishScript(false);
export const FINISH_AUDITED = finishScript(true);

/** KEYS[4..5] outbox, dropped; ARGV[6..8] frame, outbox max, channel. */
export const RETRY = `${RECORD_FRAME_LUA}${OWNED_LUA}
if not owned(KEYS[1], ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'status', 'pending', 'token', '', 'error', ARGV[3], 'updated_at', ARGV[4])
redis.call('ZREM', KEYS[2], ARGV[5])
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[5])
record_frame(KEYS[4], KEYS[5], ARGV[8], ARGV[7], ARGV[6])
return 1
`;

/** KEYS[4..6] outbox, dropped, the task's queue; ARGV[4..6] frame, outbox max, channel. */
export const CANCEL = `${RECORD_FRAME_LUA}
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
if redis.call('HGET', KEYS[1], 'status') ~= 'pending' then return { 0, redis.call('HGETALL', KEYS[1]) } end
redis.call('ZREM', KEYS[6], ARGV[3])
redis.call('ZREM', KEYS[3], ARGV[3])
if redis.call('ZCARD', KEYS[6]) == 0 then redis.call('ZREM', KEYS[2], redis.call('HGET', KEYS[1], 'queue')) end
redis.call('HSET', KEYS[1], 'status', 'cancelled', 'updated_at', ARGV[1], 'error', '')
redis.call('HDEL', KEYS[1], 'claim_frame')
redis.call('EXPIRE', KEYS[1], ARGV[2])
record_frame(KEYS[4], KEYS[5], ARGV[6], ARGV[5], ARGV[4])
return { 1, redis.call('HGETALL', KEYS[1]) }
`;

/**
 * KEYS[5..6] outbox, dropped; ARGV[6..7] outbox max, channel. A dead letter's frame is built here from
 * the stored message (the task_failed frame of lib/tasks/task-events.ts).
 */
export const REAP = `${RECORD_FRAME_LUA}${DOC_FRAME_LUA}
local prefix, now, max_attempts, updated_at, retention = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4], ARGV[5]
local function dead_letter_frame(id, tkey, message)
  return doc_frame(tkey, id, 'task_failed', updated_at, function(tool_id)
    return { error = message, error_type = 'dead_letter', tool_id = tool_id }
  end)
end
local function requeue(id, tkey)
  local queue = redis.call('HGET', tkey, 'queue')
  redis.call('ZADD', prefix .. 'queue:' .. queue, redis.call('HGET', tkey, 'score'), id)
  if not redis.call('ZSCORE', KEYS[3], queue) then
    redis.call('ZADD', KEYS[3], redis.call('INCR', KEYS[4]), queue)
  end
end
local redelivered, promoted, dead = 0, 0, {}
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, 500)) do
  local tkey = prefix .. 'task:' .. id
  redis.call('ZREM', KEYS[1], id)
  if redis.call('HGET', tkey, 'status') == 'processing' then
    local attempts = tonumber(redis.call('HGET', tkey, 'attempts'))
    if attempts >= max_attempts then
      local message = 'worker lost ' .. attempts .. ' times; giving up'
      redis.call('HSET', tkey, 'status', 'failed', 'token', '', 'updated_at', updated_at, 'error',
        cjson.encode({ type = 'dead_letter', message = message }))
      redis.call('HDEL', tkey, 'claim_frame')
      redis.call('EXPIRE', tkey, retention)
      record_frame(KEYS[5], KEYS[6], ARGV[7], ARGV[6], dead_letter_frame(id, tkey, message))
      table.insert(dead, id)
    else
      redis.call('HSET', tkey, 'status', 'pending', 'token', '', 'updated_at', updated_at)
      requeue(id, tkey)
      redelivered = redelivered + 1
    end
  end
end
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, 500)) do
  local tkey = prefix .. 'task:' .. id
  redis.call('ZREM', KEYS[2], id)
  if redis.call('HGET', tkey, 'status') == 'pending' then
    requeue(id, tkey)
    promoted = promoted + 1
  end
end
return { redelivered, promoted, dead }
`;

/** The keys of one scheduling shard. */
export class ShardKeys {
	readonly ready: string;
	readonly leases: string;
	readonly delayed: string;
	readonly seq: string;
	readonly turn: string;

	constructor(
		readonly base: string,
		readonly outbox: [list: string, dropped: string]
	) {
		this.ready = `${base}ready`;
		this.leases = `${base}leases`;
		this.delayed = `${base}delayed`;
		this.seq = `${base}seq`;
		this.turn = `${base}turn`;
	}

	task = (id: string) => `${this.base}task:${id}`;
	queue = (name: string) => `${this.base}queue:${name}`;
}
