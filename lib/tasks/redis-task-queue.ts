import { randomUUID } from "crypto";
import type { JsonObject } from "../../types/wire";
import { isoNow, systemClock, type Clock } from "../clock";
import { RECORD_FRAME_LUA, shardPrefix, type RedisOutbox } from "../outbox/redis-outbox";
import { shardOf, type RedisClient } from "../redis";
import type { SecretBox } from "../secret-box";
import { maskSecrets } from "../secrets";
import { resealRecords, type Resealable, type ResealResult } from "../store/reseal";
import { mapPayloadConfig } from "./payload-secrets";
import { taskFrame, type TaskUpdate } from "./task-events";
import {
	queueOf,
	type Lease,
	type QueueDepth,
	type ReapResult,
	type TaskMessage,
	type TaskOutcome,
	type TaskQueue
} from "./task-queue";

/*
 * Layout under the prefix of each scheduling shard (lib/outbox/redis-outbox.ts `shardPrefix`; one
 * shard on a single Redis, where the prefix is the deployment's own):
 *   task:{id}            hash: doc (JSON of the immutable message), status, attempts, token, queue,
 *                        score, created_ms, updated_at, result, error
 *   queue:{type}:{tenant} sorted set of pending ids by score (priority, then submission order)
 *   ready                sorted set of non-empty queues by round-robin turn (fairness across tenants)
 *   leases               sorted set of processing ids by lease deadline
 *   delayed              sorted set of ids waiting for a retry by due time
 *   seq, turn            counters
 *   outbox, outbox:dropped  the shard's notification frames (RedisOutbox)
 * A tenant's tasks all live in one shard (`shardOf`); on a cluster the shard prefix is a hash tag, so
 * every script runs in one slot. With several shards, `task-shard:{id}` (outside any shard) names
 * the tenant of a task id, so `get` and `cancel` find it and an id is taken once across tenants.
 * Scripts touch only scalar fields (no JSON decoding in Lua, except to build a dead letter's frame),
 * and every status change checks the current status and lease token first (compare-and-set). A
 * status change records its notification frame in the outbox within the same script (RECORD_FRAME_LUA).
 * CLAIM and REAP also touch the queue and task keys they find in the shard's sets: keys of the same
 * hash tag, so of the same slot.
 */

const SUBMIT = `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local seq = redis.call('INCR', KEYS[4])
local score = string.format('%.0f', (9 - tonumber(ARGV[4])) * 1099511627776 + seq)
redis.call('HSET', KEYS[1], 'doc', ARGV[1], 'status', 'pending', 'attempts', 0, 'token', '',
  'queue', ARGV[3], 'score', score, 'created_ms', ARGV[5], 'updated_at', ARGV[6], 'result', '', 'error', '')
redis.call('ZADD', KEYS[2], score, ARGV[2])
if not redis.call('ZSCORE', KEYS[3], ARGV[3]) then
  redis.call('ZADD', KEYS[3], redis.call('INCR', KEYS[5]), ARGV[3])
end
return 1
`;

const CLAIM = `
for _ = 1, 10 do
  local picked = redis.call('ZRANGE', KEYS[1], 0, 0)
  if #picked == 0 then return false end
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
    if redis.call('HGET', tkey, 'status') == 'pending' then
      redis.call('HSET', tkey, 'status', 'processing', 'token', ARGV[4], 'updated_at', ARGV[5])
      redis.call('HINCRBY', tkey, 'attempts', 1)
      redis.call('ZADD', KEYS[2], tonumber(ARGV[2]) + tonumber(ARGV[3]), id)
      return redis.call('HGETALL', tkey)
    end
  end
end
return false
`;

const OWNED = `redis.call('HGET', KEYS[1], 'status') == 'processing' and redis.call('HGET', KEYS[1], 'token') == ARGV[1]`;

const EXTEND = `
if not (${OWNED}) then return 0 end
redis.call('ZADD', KEYS[2], 'XX', ARGV[2], ARGV[3])
return 1
`;

/** KEYS[1..2] task, leases; KEYS[3..4] outbox, dropped; ARGV[8..10] frame, outbox max, channel. */
const FINISH = `${RECORD_FRAME_LUA}
if not (${OWNED}) then return false end
redis.call('HSET', KEYS[1], 'status', ARGV[2], 'result', ARGV[3], 'error', ARGV[4], 'updated_at', ARGV[5], 'token', '')
redis.call('ZREM', KEYS[2], ARGV[7])
redis.call('EXPIRE', KEYS[1], ARGV[6])
record_frame(KEYS[3], KEYS[4], ARGV[10], ARGV[9], ARGV[8])
return redis.call('HGETALL', KEYS[1])
`;

/** KEYS[4..5] outbox, dropped; ARGV[6..8] frame, outbox max, channel. */
const RETRY = `${RECORD_FRAME_LUA}
if not (${OWNED}) then return 0 end
redis.call('HSET', KEYS[1], 'status', 'pending', 'token', '', 'error', ARGV[3], 'updated_at', ARGV[4])
redis.call('ZREM', KEYS[2], ARGV[5])
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[5])
record_frame(KEYS[4], KEYS[5], ARGV[8], ARGV[7], ARGV[6])
return 1
`;

/** KEYS[4..6] outbox, dropped, the task's queue; ARGV[4..6] frame, outbox max, channel. */
const CANCEL = `${RECORD_FRAME_LUA}
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
if redis.call('HGET', KEYS[1], 'status') ~= 'pending' then return { 0, redis.call('HGETALL', KEYS[1]) } end
redis.call('ZREM', KEYS[6], ARGV[3])
redis.call('ZREM', KEYS[3], ARGV[3])
if redis.call('ZCARD', KEYS[6]) == 0 then redis.call('ZREM', KEYS[2], redis.call('HGET', KEYS[1], 'queue')) end
redis.call('HSET', KEYS[1], 'status', 'cancelled', 'updated_at', ARGV[1], 'error', '')
redis.call('EXPIRE', KEYS[1], ARGV[2])
record_frame(KEYS[4], KEYS[5], ARGV[6], ARGV[5], ARGV[4])
return { 1, redis.call('HGETALL', KEYS[1]) }
`;

/**
 * KEYS[5..6] outbox, dropped; ARGV[6..7] outbox max, channel. A dead letter's frame is built here from
 * the stored message (the task_failed frame of lib/tasks/task-events.ts).
 */
const REAP = `${RECORD_FRAME_LUA}
local prefix, now, max_attempts, updated_at, retention = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4], ARGV[5]
local function dead_letter_frame(id, tkey, message)
  local doc = cjson.decode(redis.call('HGET', tkey, 'doc'))
  local metadata = type(doc.metadata) == 'table' and doc.metadata or {}
  local payload = type(doc.payload) == 'table' and doc.payload or {}
  return cjson.encode({ event = 'task_failed', service = 'tool-registry', task_id = id,
    global_task_id = metadata.global_task_id or cjson.null, tenant_id = doc.tenant_id, timestamp = updated_at,
    data = { error = message, error_type = 'dead_letter', tool_id = payload.tool_id or cjson.null } })
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
class ShardKeys {
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

/**
 * Durable queue on Redis: every acknowledged write is in Redis (durability per its AOF settings). With
 * a secret box, a registration's secrets are stored sealed and opened only for the worker (`claim`).
 */
export class RedisTaskQueue implements TaskQueue, Resealable {
	private readonly shards: ShardKeys[];
	/** The shard the next claim tries first; claims rotate over the shards. */
	private cursor: number;

	constructor(
		private readonly redis: RedisClient,
		private readonly prefix: string,
		private readonly outbox: RedisOutbox,
		private readonly retentionS = 24 * 3600,
		private readonly clock: Clock = systemClock,
		private readonly secretBox?: SecretBox
	) {
		this.shards = Array.from(
			{ length: outbox.shards },
			(_, shard) => new ShardKeys(shardPrefix(redis, prefix, shard), outbox.keys(shard))
		);
		this.cursor = Math.floor(Math.random() * this.shards.length);
	}

	/**
	 * Seals again, under the box's current key, the secrets of every stored registration (queued, or
	 * finished and kept) sealed under an earlier key or stored in clear. Resolves how many changed, per tenant.
	 */
	async reseal(): Promise<ResealResult> {
		const box = this.secretBox;
		if (!box) return { key_id: "", resealed: new Map() };
		const resealed = new Map<string, number>();
		for (const keys of this.shards) {
			const counts = await resealRecords(this.redis, keys.task("*"), (value, field) => {
				if (field !== "doc") return null;
				const doc = JSON.parse(value) as TaskMessage;
				const json = JSON.stringify(mapPayloadConfig(doc, config => box.resealConfig(config)));
				return json === value ? null : { json, tenantId: doc.tenant_id };
			});
			for (const [tenantId, n] of counts) resealed.set(tenantId, (resealed.get(tenantId) ?? 0) + n);
		}
		return { key_id: box.keyId, resealed };
	}

	/** The message as the worker needs it: its secrets opened. */
	private opened = (task: TaskMessage) =>
		this.secretBox ? mapPayloadConfig(task, config => this.secretBox!.openConfig(config)) : task;

	private shardOf = (tenantId: string) => shardOf(tenantId, this.shards.length);
	private keysOf = (task: { tenant_id: string }) => this.shards[this.shardOf(task.tenant_id)];
	/** With several shards: the tenant of a task id (see the layout). */
	private homeKey = (taskId: string) => `${this.prefix}task-shard:${taskId}`;

	/** The shard holding a task id, or null when the id is unknown. */
	private async shardOfTask(taskId: string): Promise<ShardKeys | null> {
		if (this.shards.length === 1) return this.shards[0];
		const tenant = await this.redis.get(this.homeKey(taskId));
		return tenant === null ? null : this.shards[this.shardOf(tenant)];
	}

	/** Lets the id's entry expire with the task it names (several shards only). */
	private async release(taskIds: string[]) {
		if (this.shards.length > 1)
			await Promise.all(taskIds.map(id => this.redis.expire(this.homeKey(id), this.retentionS)));
	}

	async submit(task: TaskMessage) {
		if (this.shards.length > 1) {
			const claimed = await this.redis.set(this.homeKey(task.task_id), task.tenant_id, "NX");
			if (claimed === null) return { task: (await this.get(task.task_id))!, created: false };
		}
		const { status: _s, attempts: _a, updated_at, result: _r, error: _e, ...doc } = task;
		const queue = queueOf(task.type, task.tenant_id);
		const keys = this.keysOf(task);
		const created = await this.redis.eval(
			SUBMIT,
			5,
			keys.task(task.task_id),
			keys.queue(queue),
			keys.ready,
			keys.seq,
			keys.turn,
			JSON.stringify(
				this.secretBox ? mapPayloadConfig(doc, config => this.secretBox!.sealConfig(config)) : doc
			),
			task.task_id,
			queue,
			String(task.priority),
			String(Date.parse(task.created_at)),
			updated_at
		);
		if (created === 1) return { task, created: true };
		return { task: (await this.get(task.task_id))!, created: false };
	}

	async get(taskId: string) {
		const keys = await this.shardOfTask(taskId);
		return keys && fromHash(await this.redis.hgetall(keys.task(taskId)));
	}

	async claim(leaseMs: number): Promise<Lease | null> {
		const token = randomUUID();
		for (let i = 0; i < this.shards.length; i++) {
			const shard = (this.cursor + i) % this.shards.length;
			const keys = this.shards[shard];
			const fields = (await this.redis.eval(
				CLAIM,
				3,
				keys.ready,
				keys.leases,
				keys.turn,
				keys.base,
				String(this.clock.now()),
				String(leaseMs),
				token,
				isoNow(this.clock)
			)) as string[] | null;
			if (fields) {
				this.cursor = (shard + 1) % this.shards.length;
				return { task: this.opened(stored(hashOf(fields))), token };
			}
		}
		return null;
	}

	async extend(lease: Lease, leaseMs: number) {
		const keys = this.keysOf(lease.task);
		const extended = await this.redis.eval(
			EXTEND,
			2,
			keys.task(lease.task.task_id),
			keys.leases,
			lease.token,
			String(this.clock.now() + leaseMs),
			lease.task.task_id
		);
		return extended === 1;
	}

	async finish(lease: Lease, outcome: TaskOutcome, executionTimeMs?: number) {
		const updatedAt = isoNow(this.clock);
		const { result: _result, error: _error, ...running } = lease.task;
		const final: TaskMessage = Object.assign(running, outcome, { updated_at: updatedAt });
		const event = outcome.status === "completed" ? "task_completed" : "task_failed";
		const frame = this.frame({ event, task: final, execution_time_ms: executionTimeMs }, updatedAt);
		const keys = this.keysOf(lease.task);
		const fields = (await this.redis.eval(
			FINISH,
			4,
			keys.task(lease.task.task_id),
			keys.leases,
			...keys.outbox,
			lease.token,
			outcome.status,
			outcome.result ? JSON.stringify(outcome.result) : "",
			outcome.error ? JSON.stringify(outcome.error) : "",
			updatedAt,
			String(this.retentionS),
			lease.task.task_id,
			frame,
			this.outbox.max,
			this.outbox.channel
		)) as string[] | null;
		if (!fields) return null;
		await this.release([lease.task.task_id]);
		return fromPairs(fields);
	}

	async retry(lease: Lease, delayMs: number, error: JsonObject) {
		const updatedAt = isoNow(this.clock);
		const frame = this.frame(
			{
				event: "task_status_update",
				task: { ...lease.task, status: "pending", error, updated_at: updatedAt },
				message: `retrying in ${delayMs} ms`
			},
			updatedAt
		);
		const keys = this.keysOf(lease.task);
		const retried = await this.redis.eval(
			RETRY,
			5,
			keys.task(lease.task.task_id),
			keys.leases,
			keys.delayed,
			...keys.outbox,
			lease.token,
			String(this.clock.now() + delayMs),
			JSON.stringify(error),
			updatedAt,
			lease.task.task_id,
			frame,
			this.outbox.max,
			this.outbox.channel
		);
		return retried === 1;
	}

	async cancel(taskId: string) {
		// The frame is built from the message as read now; the script records it only if it cancels.
		const current = await this.get(taskId);
		if (!current) return null;
		const updatedAt = isoNow(this.clock);
		const { result: _result, error: _error, ...task } = current;
		const frame = this.frame(
			{
				event: "task_status_update",
				task: { ...task, status: "cancelled", updated_at: updatedAt },
				message: "cancelled"
			},
			updatedAt
		);
		const keys = this.keysOf(current);
		const answer = (await this.redis.eval(
			CANCEL,
			6,
			keys.task(taskId),
			keys.ready,
			keys.delayed,
			...keys.outbox,
			keys.queue(queueOf(current.type, current.tenant_id)),
			updatedAt,
			String(this.retentionS),
			taskId,
			frame,
			this.outbox.max,
			this.outbox.channel
		)) as [number, string[]] | null;
		if (answer?.[0] === 1) await this.release([taskId]);
		return answer ? { task: fromPairs(answer[1]), cancelled: answer[0] === 1 } : null;
	}

	async reap(maxAttempts: number): Promise<ReapResult> {
		const result: ReapResult = { redelivered: 0, promoted: 0, dead_lettered: [] };
		for (const keys of this.shards) {
			const [redelivered, promoted, dead] = (await this.redis.eval(
				REAP,
				6,
				keys.leases,
				keys.delayed,
				keys.ready,
				keys.turn,
				...keys.outbox,
				keys.base,
				String(this.clock.now()),
				String(maxAttempts),
				isoNow(this.clock),
				String(this.retentionS),
				this.outbox.max,
				this.outbox.channel
			)) as [number, number, string[]];
			result.redelivered += redelivered;
			result.promoted += promoted;
			const deadLettered = await Promise.all(
				dead.map(async id => fromHash(await this.redis.hgetall(keys.task(id))))
			);
			result.dead_lettered.push(...deadLettered.filter((task): task is TaskMessage => task !== null));
			await this.release(dead);
		}
		return result;
	}

	async record(update: TaskUpdate) {
		// In the task's shard, behind its earlier frames.
		await this.outbox.push(this.frame(update, isoNow(this.clock)), this.shardOf(update.task.tenant_id));
	}

	private frame(update: TaskUpdate, timestamp: string): string {
		return JSON.stringify(taskFrame(update, timestamp));
	}

	async depths(): Promise<QueueDepth[]> {
		const now = this.clock.now();
		const perShard = await Promise.all(
			this.shards.map(async keys => {
				const queues = await this.redis.zrange(keys.ready, 0, -1);
				return Promise.all(
					queues.map(async queue => {
						const qkey = keys.queue(queue);
						const [pending, next] = await Promise.all([
							this.redis.zcard(qkey),
							this.redis.zrange(qkey, 0, 49)
						]);
						// Age of the oldest among the next tasks to run: exact unless priorities reorder a deep queue.
						const created = await Promise.all(next.map(id => this.redis.hget(keys.task(id), "created_ms")));
						const oldest = Math.min(...created.map(Number).filter(Number.isFinite), now);
						return {
							queue,
							tenant_id: queue.slice(queue.indexOf(":") + 1),
							pending,
							oldest_age_ms: now - oldest
						};
					})
				);
			})
		);
		return perShard.flat();
	}
}

function hashOf(fields: string[]): Record<string, string> {
	const hash: Record<string, string> = {};
	for (let i = 0; i < fields.length; i += 2) hash[fields[i]] = fields[i + 1];
	return hash;
}

const fromPairs = (fields: string[]): TaskMessage => fromHash(hashOf(fields))!;

/** The stored message; a registration's secrets masked (sealed or not, they are for the worker only). */
function fromHash(hash: Record<string, string>): TaskMessage | null {
	if (!hash.doc) return null;
	return mapPayloadConfig(stored(hash), maskSecrets);
}

function stored(hash: Record<string, string>): TaskMessage {
	return {
		...(JSON.parse(hash.doc) as Omit<TaskMessage, "status" | "attempts" | "updated_at">),
		status: hash.status as TaskMessage["status"],
		attempts: Number(hash.attempts),
		updated_at: hash.updated_at,
		...(hash.result ? { result: JSON.parse(hash.result) as JsonObject } : {}),
		...(hash.error ? { error: JSON.parse(hash.error) as JsonObject } : {})
	};
}
