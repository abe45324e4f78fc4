import { randomBytes, randomUUID } from "crypto";
import { SecretBox } from "../../../lib/secret-box";
import type { RedisTaskQueue } from "../../../lib/tasks/redis-task-queue";
import type { Outbox } from "../../../lib/outbox/outbox";
import { outboxFor, taskQueueFor } from "../../../lib/tasks/backend";
import type { TaskQueue } from "../../../lib/tasks/task-queue";
import { ManualClock } from "../manual-clock";
import { pendingTask } from "../tasks";
import { connectRedis, isCluster, scanKeys, type RedisClient } from "../../../lib/redis";
import type { AuditAction, AuditDraft } from "../../../lib/audit/audit-log";
import { MemoryAuditLog } from "../../../lib/audit/memory-audit-log";
import { RedisAuditLog } from "../../../lib/audit/redis-audit-log";
import { dropPrefix, uniquePrefix } from "../backends";

const task = pendingTask;

/**
 * The conformance suite of the task queue and its outbox: memory when `redisUrl()` is undefined, else the Redis (or
 * `redis+cluster://` cluster) it names, read when the suite runs.
 */
export function taskQueueSuite(redisUrl: () => string | undefined): void {
	let queue: TaskQueue;
	let outbox: Outbox;
	let redis: RedisClient | undefined;
	let prefix: string;
	/** Claimed tasks the queue could not read, as it reported them. */
	let unreadable: string[];
	// Leases, backoffs and ages are read from this clock: a test moves time instead of sleeping.
	let clock: ManualClock;

	beforeEach(() => {
		clock = new ManualClock();
		prefix = uniquePrefix();
		redis = redisUrl() ? connectRedis(redisUrl()!) : undefined;
		// A new owner per test: the memory backends are shared per owner (a broker in the services).
		const backend = { redis: redis ?? null, redisPrefix: prefix, outboxMax: 1000, retentionS: 60, clock };
		const owner = {};
		unreadable = [];
		queue = taskQueueFor(owner, {
			...backend,
			secretBox: new SecretBox(randomBytes(32)),
			onUnreadable: taskId => unreadable.push(taskId)
		});
		outbox = outboxFor(owner, backend);
	});

	const claimOne = async (leaseMs: number) => (await queue.claim(leaseMs, 1))[0] ?? null;

	afterEach(async () => {
		await redis?.quit();
		if (redisUrl()) await dropPrefix(redisUrl()!, prefix);
	});

	it("stores a submitted task as pending and treats a resubmitted id as the same task", async () => {
		const first = task("acme", { metadata: { agent_id: "a1" } });
		expect(await queue.submit(first)).toMatchObject({ created: true });
		const again = await queue.submit({ ...first, payload: { changed: true } });
		expect(again.created).toBe(false);
		expect(again.task.payload).toEqual(first.payload);
		expect(await queue.get(first.task_id)).toMatchObject({
			status: "pending",
			attempts: 0,
			metadata: { agent_id: "a1" }
		});
		expect(await queue.get(randomUUID())).toBeNull();
	});

	it("appends the audit entries it is given with a submission and with a run's outcome, where it can in the same step", async () => {
		const retention = { maxAgeMs: 3600000, maxEntries: 1000 };
		const auditLog = redis ? new RedisAuditLog(redis, prefix, retention) : new MemoryAuditLog(retention);
		const backend = { redis: redis ?? null, redisPrefix: prefix, outboxMax: 1000, retentionS: 60, clock };
		const audited = taskQueueFor({}, { ...backend, auditLog });
		const draft = (action: AuditAction, target: string): AuditDraft => ({
			tenant_id: "acme",
			actor: { kind: "service" },
			action,
			target,
			outcome: "accepted"
		});
		// A queue without a trail refuses an entry rather than dropping it, and stores nothing.
		expect(queue.appendsAudit).toBe(false);
		const refused = task("acme");
		await expect(queue.submit(refused, draft("task.submit", "refused"))).rejects.toThrow(
			/appendsAudit is false/
		);
		expect(await queue.get(refused.task_id)).toBeNull();
		// A cluster keeps a tenant's audit stream in another slot than its tasks: callers append.
		expect(audited.appendsAudit).toBe(!(redis && isCluster(redis)));
		if (!audited.appendsAudit) return;
		const t = task("acme");
		await audited.submit(t, draft("task.submit", `task:${t.task_id}`));
		// A known id is not submitted again, and neither is its entry.
		expect((await audited.submit(t, draft("task.submit", "again"))).created).toBe(false);
		const [lease] = await audited.claim(1000, 1);
		const outcome = { status: "completed" as const, result: { value: 2 } };
		expect(await audited.finish(lease, outcome, 1, draft("tool.execute", "tool:first"))).not.toBeNull();
		// A run whose lease was lost still happened: its entry is appended, its outcome is not.
		expect(await audited.finish(lease, outcome, 1, draft("tool.execute", "tool:late"))).toBeNull();
		const { items } = await auditLog.list("acme", { limit: 10 });
		expect(items.map(entry => [entry.action, entry.target])).toEqual([
			["tool.execute", "tool:late"],
			["tool.execute", "tool:first"],
			["task.submit", `task:${t.task_id}`]
		]);
		expect(await audited.get(t.task_id)).toMatchObject({ status: "completed", result: { value: 2 } });
	});

	it("hands a registration's secrets to the worker only, sealed at rest and masked in every other read", async () => {
		const headers = { "X-Api-Key": "queued-secret" };
		const definition = {
			name: "keyed",
			description: "Keyed",
			type: "external_api",
			config: { url: "https://x.example", headers }
		};
		const t = task("acme", { type: "tool_registration", payload: definition });
		await queue.submit(t);
		const masked = { ...definition, config: { ...definition.config, headers: { "X-Api-Key": "********" } } };
		expect((await queue.get(t.task_id))!.payload).toEqual(masked);
		expect((await queue.submit(t)).task.payload).toEqual(masked);
		if (redis) {
			// On a cluster the task sits under its shard's hash tag.
			let key = `${prefix}task:${t.task_id}`;
			for await (const keys of scanKeys(redis, `${prefix}*task:${t.task_id}`)) key = keys[0];
			const doc = await redis.hget(key, "doc");
			expect(doc).toMatch(/"X-Api-Key":"enc:v1:[0-9a-f]{8}:/);
			expect(doc).not.toContain("queued-secret");
		}
		const lease = (await claimOne(1000))!;
		expect(lease.task.payload).toEqual(definition);
		const finished = await queue.finish(lease, { status: "completed", result: {} });
		expect(finished!.payload).toEqual(masked);
	});

	it("seals a queued registration again under a rotated key, so the old key can go before it runs", async () => {
		if (!redis) return;
		const [oldKey, newKey] = [randomBytes(32), randomBytes(32)];
		const backend = { redis, redisPrefix: prefix, outboxMax: 1000, retentionS: 60, clock };
		const queueUnder = (box: SecretBox) => taskQueueFor({}, { ...backend, secretBox: box }) as RedisTaskQueue;
		const definition = {
			name: "keyed",
			type: "external_api",
			config: { headers: { "X-Api-Key": "queued" } }
		};
		const t = task("acme", { type: "tool_registration", payload: definition });
		await queueUnder(new SecretBox(oldKey)).submit(t);
		const rotated = queueUnder(new SecretBox(newKey, [oldKey]));
		expect((await rotated.reseal()).resealed).toEqual(new Map([["acme", 1]]));
		expect((await rotated.reseal()).resealed).toEqual(new Map());
		const [lease] = await queueUnder(new SecretBox(newKey)).claim(1000, 1);
		expect(lease.task.payload).toEqual(definition);
	});

	it("serves higher priority first and submission order within a priority", async () => {
		const low = task("acme", { priority: 0 });
		const high = task("acme", { priority: 9 });
		const mid1 = task("acme", { priority: 5 });
		const mid2 = task("acme", { priority: 5 });
		for (const t of [low, high, mid1, mid2]) await queue.submit(t);
		const order: string[] = [];
		for (let lease = await claimOne(1000); lease; lease = await claimOne(1000))
			order.push(lease.task.task_id);
		expect(order).toEqual([high.task_id, mid1.task_id, mid2.task_id, low.task_id]);
	});

	it("claims up to the number asked at once, fairly across tenants, each lease its own", async () => {
		const flood = Array.from({ length: 4 }, () => task("flood"));
		const small = Array.from({ length: 2 }, () => task("small"));
		for (const t of [...flood, ...small]) await queue.submit(t);
		const first = await queue.claim(1000, 4);
		const rest = await queue.claim(1000, 10);
		expect(first).toHaveLength(4);
		expect(first.filter(lease => lease.task.tenant_id === "small").length).toBeGreaterThanOrEqual(1);
		expect(await queue.claim(1000, 10)).toEqual([]);
		const leases = [...first, ...rest];
		const idsOf = (tenant: string) =>
			leases.filter(lease => lease.task.tenant_id === tenant).map(lease => lease.task.task_id);
		expect(idsOf("flood")).toEqual(flood.map(t => t.task_id));
		expect(idsOf("small")).toEqual(small.map(t => t.task_id));
		// On one scheduling shard (memory, a single Redis), exactly the order of single claims.
		if (!redisUrl()?.startsWith("redis+cluster:"))
			expect(leases.map(lease => lease.task.tenant_id)).toEqual([
				"flood",
				"small",
				"flood",
				"small",
				"flood",
				"flood"
			]);
		expect(leases.map(lease => lease.task)).toEqual(
			leases.map(() => expect.objectContaining({ status: "processing", attempts: 1 }))
		);
		for (const lease of leases)
			expect(await queue.finish(lease, { status: "completed", result: {} })).toMatchObject({
				task_id: lease.task.task_id,
				status: "completed"
			});
	});

	it("hands out the readable tasks of a claim when one of them cannot be read, and reports that one", async () => {
		const tasks = [task("acme"), task("acme"), task("acme")];
		for (const t of tasks) await queue.submit(t);
		// On Redis: a stored message that no longer parses (the memory queue holds objects).
		if (redis)
			for await (const keys of scanKeys(redis, `${prefix}*task:${tasks[1].task_id}`))
				await redis.hset(keys[0], "doc", "{not json");
		const leases = await queue.claim(1000, 3);
		const broken = redis ? [tasks[1].task_id] : [];
		expect(leases.map(lease => lease.task.task_id)).toEqual(
			tasks.map(t => t.task_id).filter(id => !broken.includes(id))
		);
		expect(unreadable).toEqual(broken);
	});

	it("serves tenants round-robin so a flood does not starve a small tenant", async () => {
		for (let i = 0; i < 50; i++) await queue.submit(task("flood"));
		const few = [task("small"), task("small")];
		for (const t of few) await queue.submit(t);
		const tenants: string[] = [];
		for (let i = 0; i < 6; i++) tenants.push((await claimOne(1000))!.task.tenant_id);
		expect(tenants.filter(t => t === "small")).toHaveLength(2);
		expect(tenants.slice(0, 4).filter(t => t === "small").length).toBeGreaterThanOrEqual(1);
	});

	it("marks a claimed task processing with one more attempt and finishes it only with its token", async () => {
		const t = task("acme");
		await queue.submit(t);
		const lease = (await claimOne(1000))!;
		expect(lease.task).toMatchObject({ task_id: t.task_id, status: "processing", attempts: 1 });
		expect(
			await queue.finish({ ...lease, token: "forged" }, { status: "completed", result: { v: 1 } })
		).toBeNull();
		const done = await queue.finish(lease, { status: "completed", result: { v: 2, list: [] } });
		expect(done).toMatchObject({ status: "completed", result: { v: 2, list: [] } });
		expect(await queue.finish(lease, { status: "failed", error: { message: "late" } })).toBeNull();
		// finish answers the task exactly as stored (the Redis queue builds it without reading it back).
		expect(await queue.get(t.task_id)).toEqual(done);
		expect(await claimOne(1000)).toBeNull();
		// The submitted object is the caller's: the queue's status changes are its own.
		expect(t).toMatchObject({ status: "pending", attempts: 0 });
		expect(t).not.toHaveProperty("result");
	});

	it("redelivers a task whose lease expired, and the first worker can no longer finish it", async () => {
		const t = task("acme");
		await queue.submit(t);
		const lost = (await claimOne(50))!;
		await clock.advance(80);
		expect(await queue.reap(3)).toMatchObject({ redelivered: 1, dead_lettered: [] });
		const second = (await claimOne(1000))!;
		expect(second.task).toMatchObject({ task_id: t.task_id, attempts: 2 });
		expect(await queue.finish(lost, { status: "completed", result: { by: "lost" } })).toBeNull();
		expect(await queue.extend(lost, 1000)).toBe(false);
		expect(await queue.finish(second, { status: "completed", result: { by: "second" } })).toMatchObject({
			result: { by: "second" }
		});
	});

	it("keeps a lease alive while it is extended", async () => {
		await queue.submit(task("acme"));
		const lease = (await claimOne(60))!;
		for (let i = 0; i < 4; i++) {
			await clock.advance(30);
			expect(await queue.extend(lease, 60)).toBe(true);
			expect((await queue.reap(3)).redelivered).toBe(0);
		}
	});

	it("dead-letters a task that ran out of attempts as failed with a reason", async () => {
		const t = task("acme");
		await queue.submit(t);
		for (let attempt = 1; attempt <= 2; attempt++) {
			await claimOne(10);
			await clock.advance(25);
			await queue.reap(2);
		}
		const task2 = await queue.get(t.task_id);
		expect(task2).toMatchObject({ status: "failed", attempts: 2, error: { type: "dead_letter" } });
		expect(await claimOne(1000)).toBeNull();
	});

	it("returns dead-lettered tasks from reap so their failure can be announced", async () => {
		const t = task("acme");
		await queue.submit(t);
		await claimOne(10);
		await clock.advance(25);
		const reaped = await queue.reap(1);
		expect(reaped.dead_lettered.map(d => d.task_id)).toEqual([t.task_id]);
	});

	it("puts a retried task back only after its backoff", async () => {
		const t = task("acme");
		await queue.submit(t);
		const lease = (await claimOne(1000))!;
		expect(await queue.retry(lease, 60, { type: "upstream_error", message: "503" })).toBe(true);
		expect(await queue.get(t.task_id)).toMatchObject({
			status: "pending",
			error: { type: "upstream_error" }
		});
		await queue.reap(3);
		expect(await claimOne(1000)).toBeNull();
		await clock.advance(80);
		expect((await queue.reap(3)).promoted).toBe(1);
		const again = (await claimOne(1000))!;
		expect(again.task.attempts).toBe(2);
		const done = await queue.finish(again, { status: "completed", result: {} });
		expect(done?.error).toBeUndefined();
	});

	it("cancels a pending task, never a processing one", async () => {
		const a = task("acme");
		const b = task("acme");
		await queue.submit(a);
		await queue.submit(b);
		const lease = (await claimOne(1000))!;
		expect(lease.task.task_id).toBe(a.task_id);
		expect(await queue.cancel(a.task_id)).toMatchObject({ cancelled: false, task: { status: "processing" } });
		expect(await queue.cancel(b.task_id)).toMatchObject({ cancelled: true, task: { status: "cancelled" } });
		expect(await queue.cancel(b.task_id)).toMatchObject({ cancelled: false, task: { status: "cancelled" } });
		expect(await claimOne(1000)).toBeNull();
		expect(await queue.cancel(randomUUID())).toBeNull();
	});

	it("reports depth and oldest age per tenant queue", async () => {
		await queue.submit(task("acme", { created_at: new Date(clock.now() - 5000).toISOString() }));
		await queue.submit(task("acme"));
		await queue.submit(task("beta", { type: "tool_validation" }));
		const depths = await queue.depths();
		const acme = depths.find(d => d.queue === "tool_execution:acme")!;
		expect(acme).toMatchObject({ tenant_id: "acme", pending: 2 });
		expect(acme.oldest_age_ms).toBe(5000);
		expect(depths.find(d => d.queue === "tool_validation:beta")).toMatchObject({ pending: 1 });
	});

	it("delivers every task exactly once to concurrent claimers", async () => {
		const ids = new Set<string>();
		for (let i = 0; i < 200; i++) {
			const t = task(`tenant-${i % 7}`);
			ids.add(t.task_id);
			await queue.submit(t);
		}
		const seen: string[] = [];
		await Promise.all(
			Array.from({ length: 8 }, async () => {
				for (let lease = await claimOne(5000); lease; lease = await claimOne(5000)) {
					seen.push(lease.task.task_id);
					await queue.finish(lease, { status: "completed", result: {} });
				}
			})
		);
		expect(seen).toHaveLength(200);
		expect(new Set(seen)).toEqual(ids);
	});

	describe("records each status change and its notification frame together", () => {
		const frames = async () => (await outbox.peek(1000)).map(frame => JSON.parse(frame));

		it("records the run's task_status_update with each claim, before the tool runs", async () => {
			const t = task("acme", { metadata: { global_task_id: "g-1" }, payload: { tool_id: "tool-1" } });
			// One tenant: on a cluster each scheduling shard has its own outbox.
			const plain = task("acme");
			await queue.submit(t);
			await queue.submit(plain);
			const first = (await claimOne(10))!;
			const other = (await claimOne(5000))!;
			await clock.advance(20);
			await queue.reap(5);
			const second = (await claimOne(5000))!;
			const update = (claimed: typeof first, globalTaskId: string | null, toolId: string | null) => ({
				event: "task_status_update",
				service: "tool-registry",
				task_id: claimed.task.task_id,
				global_task_id: globalTaskId,
				tenant_id: claimed.task.tenant_id,
				timestamp: claimed.task.updated_at,
				data: {
					status: "processing",
					details: { tool_id: toolId, message: `attempt ${claimed.task.attempts}` }
				}
			});
			expect(second.task.attempts).toBe(2);
			expect(await frames()).toEqual([
				update(first, "g-1", "tool-1"),
				update(other, null, null),
				update(second, "g-1", "tool-1")
			]);
		});

		it("records the claim frame of a task whose fields hold a NUL byte, or stored without its template", async () => {
			const odd = task("acme", { metadata: { global_task_id: "g\u00001" }, payload: { tool_id: "t\u0000" } });
			const legacy = task("acme", { payload: { tool_id: "tool-2" } });
			await queue.submit(odd);
			await queue.submit(legacy);
			// On Redis: as a task queued by a release that stored no frame template.
			if (redis)
				for await (const keys of scanKeys(redis, `${prefix}*task:${legacy.task_id}`))
					await redis.hdel(keys[0], "claim_frame");
			const first = (await claimOne(5000))!;
			const second = (await claimOne(5000))!;
			expect(await frames()).toEqual([
				expect.objectContaining({
					task_id: odd.task_id,
					global_task_id: "g\u00001",
					timestamp: first.task.updated_at,
					data: { status: "processing", details: { tool_id: "t\u0000", message: "attempt 1" } }
				}),
				{
					event: "task_status_update",
					service: "tool-registry",
					task_id: legacy.task_id,
					global_task_id: null,
					tenant_id: "acme",
					timestamp: second.task.updated_at,
					data: { status: "processing", details: { tool_id: "tool-2", message: "attempt 1" } }
				}
			]);
		});

		it("records task_completed with the result when it finishes, nothing when the lease was lost", async () => {
			const t = task("acme", { metadata: { global_task_id: "g-1", execution_id: "e-1" } });
			await queue.submit(t);
			const lease = (await claimOne(5000))!;
			await queue.finish(lease, { status: "completed", result: { answer: 42 } }, 12);
			expect(await queue.finish(lease, { status: "failed", error: { message: "late" } })).toBeNull();
			expect((await frames()).slice(1)).toEqual([
				{
					event: "task_completed",
					service: "tool-registry",
					task_id: t.task_id,
					global_task_id: "g-1",
					tenant_id: "acme",
					timestamp: (await queue.get(t.task_id))!.updated_at,
					data: { tool_id: null, execution_id: "e-1", result: { answer: 42 }, execution_time_ms: 12 }
				}
			]);
		});

		it("records a retry, a cancellation and a dead letter, each once", async () => {
			const retried = task("acme");
			const cancelled = task("acme");
			const dead = task("acme", { payload: { tool_id: "tool-9" } });
			for (const t of [retried, dead, cancelled]) await queue.submit(t);
			const first = (await claimOne(5000))!;
			await queue.retry(first, 60000, { type: "upstream_error", message: "503" });
			await claimOne(1);
			await clock.advance(20);
			await queue.reap(1);
			await queue.cancel(cancelled.task_id);
			await queue.cancel(cancelled.task_id);
			const recorded = await frames();
			expect(
				recorded.map(frame => [frame.task_id, frame.event, frame.data.status ?? frame.data.error_type])
			).toEqual([
				[retried.task_id, "task_status_update", "processing"],
				[retried.task_id, "task_status_update", "pending"],
				[dead.task_id, "task_status_update", "processing"],
				[dead.task_id, "task_failed", "dead_letter"],
				[cancelled.task_id, "task_status_update", "cancelled"]
			]);
			expect(recorded[1].data.details.message).toBe("retrying in 60000 ms");
			expect(recorded[3]).toMatchObject({ global_task_id: null, data: { tool_id: "tool-9" } });
		});

		it("drops the oldest frames past its bound and counts them", async () => {
			const ids: string[] = [];
			for (let i = 0; i < 1005; i++) {
				const t = task("acme");
				ids.push(t.task_id);
				await queue.submit(t);
				await claimOne(5000);
			}
			expect(await outbox.size()).toBe(1000);
			expect(await outbox.dropped()).toBe(5);
			expect((await frames())[0].task_id).toBe(ids[5]);
		});
	});
}
