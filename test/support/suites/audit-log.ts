import type { AuditDraft, AuditLog, AuditRetention } from "../../../lib/audit/audit-log";
import { MemoryAuditLog } from "../../../lib/audit/memory-audit-log";
import { RedisAuditLog } from "../../../lib/audit/redis-audit-log";
import { connectRedis, type RedisClient } from "../../../lib/redis";
import { dropPrefix, uniquePrefix } from "../backends";

const DAY = 24 * 3600 * 1000;

const draft = (tenant: string, n: number, extra: Partial<AuditDraft> = {}): AuditDraft => ({
	tenant_id: tenant,
	actor: { kind: "service" },
	action: n % 2 ? "tool.update" : "tool.register",
	target: `tool:${n % 3}`,
	outcome: "success",
	details: { n },
	...extra
});

/**
 * The conformance suite of the audit log: memory when `redisUrl()` is undefined, else the Redis (or
 * `redis+cluster://` cluster) it names, read when the suite runs.
 */
export function auditLogSuite(redisUrl: () => string | undefined, name: string): void {
	const prefix = uniquePrefix();
	let redis: RedisClient | null = null;
	let tenantCounter = 0;
	const newTenant = () => `audit-${process.pid}-${++tenantCounter}`;
	/** A log with its own clock, so age bounds are tested without waiting. */
	const logWith = (retention: AuditRetention, now: () => number = Date.now): AuditLog =>
		redis ? new RedisAuditLog(redis, prefix, retention, now) : new MemoryAuditLog(retention, now);
	const defaults: AuditRetention = { maxAgeMs: 30 * DAY, maxEntries: 100000 };

	beforeAll(() => {
		if (redisUrl()) redis = connectRedis(redisUrl()!);
	});

	afterAll(async () => {
		await redis?.quit();
		if (redisUrl()) await dropPrefix(redisUrl()!, prefix);
	});

	it("reads entries back newest first, exactly as appended, with increasing ids", async () => {
		const log = logWith(defaults);
		const tenant = newTenant();
		const appended = [];
		for (let n = 0; n < 5; n++) appended.push(await log.append(draft(tenant, n)));
		const page = await log.list(tenant, { limit: 10 });
		expect(page.items).toEqual([...appended].reverse());
		const ids = appended.map(e => e.id);
		expect(new Set(ids).size).toBe(5);
		const order = (id: string) => id.split("-").map(Number);
		for (let i = 1; i < ids.length; i++) {
			const [[am, as], [bm, bs]] = [order(ids[i - 1]), order(ids[i])];
			expect(bm > am || (bm === am && bs > as)).toBe(true);
		}
	});

	it("keeps tenants apart", async () => {
		const log = logWith(defaults);
		const [a, b] = [newTenant(), newTenant()];
		await log.append(draft(a, 1));
		expect((await log.list(b, { limit: 10 })).items).toEqual([]);
		expect((await log.list(a, { limit: 10 })).items).toHaveLength(1);
	});

	it("pages with a cursor through every entry once", async () => {
		const log = logWith(defaults);
		const tenant = newTenant();
		for (let n = 0; n < 7; n++) await log.append(draft(tenant, n));
		const seen: number[] = [];
		let cursor: string | undefined;
		do {
			const page = await log.list(tenant, { limit: 3, cursor });
			seen.push(...page.items.map(e => e.details!.n as number));
			cursor = page.next_cursor ?? undefined;
		} while (cursor);
		expect(seen).toEqual([6, 5, 4, 3, 2, 1, 0]);
	});

	it("filters by action and by target, paging through the matches", async () => {
		const log = logWith(defaults);
		const tenant = newTenant();
		for (let n = 0; n < 12; n++) await log.append(draft(tenant, n));
		const updates = await log.list(tenant, { limit: 100, action: "tool.update" });
		expect(updates.items.map(e => e.details!.n)).toEqual([11, 9, 7, 5, 3, 1]);
		const first = await log.list(tenant, { limit: 2, target: "tool:0" });
		const rest = await log.list(tenant, { limit: 10, target: "tool:0", cursor: first.next_cursor! });
		expect([...first.items, ...rest.items].map(e => e.details!.n)).toEqual([9, 6, 3, 0]);
	});

	it("answers only entries since an instant", async () => {
		// Redis stamps ids with its own clock (the same machine's), so this test uses real time.
		const log = logWith(defaults);
		const tenant = newTenant();
		await log.append(draft(tenant, 0));
		const cut = Date.now() + 2;
		while (Date.now() < cut) await new Promise(resolve => setImmediate(resolve));
		await log.append(draft(tenant, 1));
		const page = await log.list(tenant, { limit: 10, sinceMs: cut });
		expect(page.items.map(e => e.details!.n)).toEqual([1]);
	});

	it("drops entries older than the retention age", async () => {
		let now = Date.now() - 40 * DAY;
		const log = logWith({ maxAgeMs: 30 * DAY, maxEntries: 100000 }, () => now);
		const tenant = newTenant();
		// Redis stream ids come from the Redis clock: only the memory log takes the injected one for ids.
		if (name === "memory") {
			await log.append(draft(tenant, 0));
			now += 31 * DAY;
		} else {
			await redis!.xadd(`${prefix}audit:${tenant}`, String(now), "e", JSON.stringify(draft(tenant, 0)));
			now = Date.now();
		}
		await log.append(draft(tenant, 1));
		expect((await log.list(tenant, { limit: 10 })).items.map(e => e.details!.n)).toEqual([1]);
	});

	it("stays bounded in length, dropping the oldest first", async () => {
		const log = logWith({ maxAgeMs: 30 * DAY, maxEntries: 10 });
		const tenant = newTenant();
		for (let n = 0; n < 400; n++) await log.append(draft(tenant, n));
		const kept = (await log.list(tenant, { limit: 1000 })).items.map(e => e.details!.n as number);
		// Redis trims whole stream nodes (about 100 entries), so a few more than the bound may stay.
		expect(kept.length).toBeGreaterThanOrEqual(10);
		expect(kept.length).toBeLessThanOrEqual(name === "memory" ? 10 : 110);
		expect(kept[0]).toBe(399);
		expect(kept).toEqual([...kept].sort((a, b) => b - a));
	});
}
