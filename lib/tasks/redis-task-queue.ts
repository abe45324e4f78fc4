import { randomUUID } from "crypto";
import type { JsonObject } from "../../types/wire";
import { isoNow, systemClock, type Clock } from "../clock";
import { shardPrefix, type RedisOutbox } from "../outbox/redis-outbox";
import type { AuditDraft } from "../audit/audit-log";
import type { RedisAuditLog } from "../audit/redis-audit-log";
import {
	CANCEL,
	CLAIM,
	EXTEND,
	FINISH,
	FINISH_AUDITED,
	REAP,
	RETRY,
	ShardKeys,
	SUBMIT,
	SUBMIT_AUDITED
} from "./redis-task-scripts";
import { shardOf, type RedisClient, runScript } from "../redis";
import type { SecretBox } from "../secret-box";
import { maskSecrets } from "../secrets";
import { resealStore, type Resealable, type ResealResult } from "../store/reseal";
import { mapPayloadConfig } from "./payload-secrets";
import { taskFrame, type TaskUpdate } from "./task-events";
import {
	auditNotAppended,
	queueOf,
	type Lease,
	type QueueDepth,
	type ReapResult,
	type TaskMessage,
	type TaskOutcome,
	type TaskQueue
} from "./task-queue";

/**
 * Durable queue on Redis: every acknowledged write is in Redis (durability per its AOF settings). With
 * a secret box, a registration's secrets are stored sealed and opened only for the worker (`claim`).
 * With the deployment's audit trail on a single Redis, a submission's and a run's audit entries are
 * appended by the script that submits or finishes the task.
 */
export class RedisTaskQueue implements TaskQueue, Resealable {
	private readonly shards: ShardKeys[];
	/** The shard the next claim asks first: the one after the last shard a claim took a task from. */
	private cursor: number;

	constructor(
		private readonly redis: RedisClient,
		private readonly prefix: string,
		private readonly outbox: RedisOutbox,
		private readonly retentionS = 24 * 3600,
		private readonly clock: Clock = systemClock,
		private readonly secretBox?: SecretBox,
		/** Told of a claimed task whose message or secrets cannot be read. */
		private readonly onUnreadable: (taskId: string, err: unknown) => void = () => undefined,
		private readonly auditLog?: RedisAuditLog
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
			const shard = await resealStore(this.redis, box, {
				pattern: keys.task("*"),
				marker: `${keys.base}tasks-sealed-under`,
				fields: ["doc"],
				reseal: value => {
					const doc = JSON.parse(value) as TaskMessage;
					const json = JSON.stringify(mapPayloadConfig(doc, config => box.resealConfig(config)));
					return json === value ? null : { json, tenantId: doc.tenant_id };
				}
			});
			for (const [tenantId, n] of shard.resealed) resealed.set(tenantId, (resealed.get(tenantId) ?? 0) + n);
		}
		return { key_id: box.keyId, resealed };
	}

	/** The message as the worker needs it: its secrets opened. */
	private opened = (task: TaskMessage) =>
		this.secretBox ? mapPayloadConfig(task, config => this.secretBox!.openConfig(config)) : task;

	/** On a cluster the tenant's audit stream is in another slot than the task's shard. */
	get appendsAudit(): boolean {
		return this.auditLog !== undefined && this.shards.length === 1;
	}

	/** The audited script's extra key and arguments, or none without an entry. */
	private auditParts(audit: AuditDraft | undefined): { keys: string[]; args: string[] } {
		if (!audit) return { keys: [], args: [] };
		if (!this.appendsAudit) throw auditNotAppended();
		const { key, args } = this.auditLog!.scriptArgs(audit);
		return { keys: [key], args };
	}

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

	async submit(task: TaskMessage, audit?: AuditDraft) {
		const audited = this.auditParts(audit);
		if (this.shards.length > 1) {
			const claimed = await this.redis.set(this.homeKey(task.task_id), task.tenant_id, "NX");
			if (claimed === null) return { task: (await this.get(task.task_id))!, created: false };
		}
		const { status: _s, attempts: _a, updated_at, result: _r, error: _e, ...doc } = task;
		const queue = queueOf(task.type, task.tenant_id);
		const keys = this.keysOf(task);
		const created = await runScript(
			this.redis,
			audited.keys.length ? SUBMIT_AUDITED : SUBMIT,
			5 + audited.keys.length,
			keys.task(task.task_id),
			keys.queue(queue),
			keys.ready,
			keys.seq,
			keys.turn,
			...audited.keys,
			JSON.stringify(
				this.secretBox ? mapPayloadConfig(doc, config => this.secretBox!.sealConfig(config)) : doc
			),
			task.task_id,
			queue,
			String(task.priority),
			String(Date.parse(task.created_at)),
			updated_at,
			claimFrameTemplate(task),
			...audited.args
		);
		if (created === 1) return { task, created: true };
		return { task: (await this.get(task.task_id))!, created: false };
	}

	async get(taskId: string) {
		const keys = await this.shardOfTask(taskId);
		return keys && fromHash(await this.redis.hgetall(keys.task(taskId)));
	}

	/**
	 * With several shards, a first pass asks each shard in turn (from the cursor) for its share of what
	 * is left, so that tenants of every shard get turns in one claim; a second pass takes the rest from
	 * the shards that gave all they were asked. A task that cannot be read (its message or its sealed
	 * secrets) is reported and left to its lease: redelivered, then dead-lettered like a task whose
	 * worker keeps dying; the others of the claim go on. A failing shard ends the claim with what the
	 * shards before it gave, or fails it when they gave nothing.
	 */
	async claim(leaseMs: number, max: number): Promise<Lease[]> {
		const token = randomUUID();
		const leases: Lease[] = [];
		const count = this.shards.length;
		let firstServed: number | null = null;
		let asking = Array.from({ length: count }, (_, i) => (this.cursor + i) % count);
		try {
			for (let pass = 0; pass < 2 && asking.length && leases.length < max; pass++) {
				const gaveAll: number[] = [];
				for (let i = 0; i < asking.length && leases.length < max; i++) {
					const shard = asking[i];
					const left = max - leases.length;
					const wanted = pass === 0 ? Math.ceil(left / (asking.length - i)) : left;
					const claimed = await this.claimIn(this.shards[shard], leaseMs, wanted, token);
					for (const row of claimed) this.take(row, token, leases);
					if (claimed.length === wanted) gaveAll.push(shard);
					if (claimed.length && firstServed === null) firstServed = shard;
				}
				asking = gaveAll;
			}
		} catch (err) {
			if (!leases.length) throw err;
		}
		// The next claim starts after this one's first shard, so that no shard always comes first.
		if (firstServed !== null) this.cursor = (firstServed + 1) % count;
		return leases;
	}

	/** Adds the lease of one claimed task (`row`: its id, doc, status, attempts, updated_at, result, error). */
	private take(
		[taskId, doc, status, attempts, updated_at, result, error]: string[],
		token: string,
		leases: Lease[]
	) {
		try {
			leases.push({ task: this.opened(stored({ doc, status, attempts, updated_at, result, error })), token });
		} catch (err) {
			this.onUnreadable(taskId, err);
		}
	}

	/** Up to `max` tasks of one shard: per task, its id, doc, status, attempts, updated_at, result and error. */
	private async claimIn(keys: ShardKeys, leaseMs: number, max: number, token: string): Promise<string[][]> {
		return (await runScript(
			this.redis,
			CLAIM,
			5,
			keys.ready,
			keys.leases,
			keys.turn,
			...keys.outbox,
			keys.base,
			String(this.clock.now()),
			String(leaseMs),
			token,
			isoNow(this.clock),
			this.outbox.max,
			this.outbox.channel,
			String(max)
		)) as string[][];
	}

	async extend(lease: Lease, leaseMs: number) {
		const keys = this.keysOf(lease.task);
		const extended = await runScript(
			this.redis,
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

	async finish(lease: Lease, outcome: TaskOutcome, executionTimeMs?: number, audit?: AuditDraft) {
		const updatedAt = isoNow(this.clock);
		const { result: _result, error: _error, ...running } = lease.task;
		const final: TaskMessage = Object.assign(running, outcome, { updated_at: updatedAt });
		const event = outcome.status === "completed" ? "task_completed" : "task_failed";
		const frame = this.frame({ event, task: final, execution_time_ms: executionTimeMs }, updatedAt);
		const keys = this.keysOf(lease.task);
		const audited = this.auditParts(audit);
		const finished = await runScript(
			this.redis,
			audited.keys.length ? FINISH_AUDITED : FINISH,
			4 + audited.keys.length,
			keys.task(lease.task.task_id),
			keys.leases,
			...keys.outbox,
			...audited.keys,
			lease.token,
			outcome.status,
			outcome.result ? JSON.stringify(outcome.result) : "",
			outcome.error ? JSON.stringify(outcome.error) : "",
			updatedAt,
			String(this.retentionS),
			lease.task.task_id,
			frame,
			this.outbox.max,
			this.outbox.channel,
			...audited.args
		);
		if (finished !== 1) return null;
		await this.release([lease.task.task_id]);
		// What the script stored, without reading it back.
		return mapPayloadConfig(final, maskSecrets);
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
		const retried = await runScript(
			this.redis,
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
		const answer = (await runScript(
			this.redis,
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
			const [redelivered, promoted, dead] = (await runScript(
				this.redis,
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

/** NUL, which JSON.stringify writes escaped: the places in a claim frame that CLAIM fills in. */
const SLOT = "\u0000";
const ESCAPED_SLOT = JSON.stringify(SLOT).slice(1, -1);

/**
 * The frame a claim of `task` records, with a NUL byte where the claim's time and then the attempt
 * number go (CLAIM joins the three parts). Empty when the task's own fields hold a NUL: CLAIM then
 * builds the frame from the stored message.
 */
function claimFrameTemplate(task: TaskMessage): string {
	const update: TaskUpdate = {
		event: "task_status_update",
		task: { ...task, status: "processing" },
		message: `attempt ${SLOT}`
	};
	const parts = JSON.stringify(taskFrame(update, SLOT)).split(ESCAPED_SLOT);
	return parts.length === 3 ? parts.join("\0") : "";
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
