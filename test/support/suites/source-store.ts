import { newId } from "../../../lib/ids";
import { MemorySourceStore } from "../../../lib/store/memory-source-store";
import { RedisSourceStore } from "../../../lib/store/redis-source-store";
import type { SourceStore } from "../../../lib/store/source-store";
import type { ToolSource } from "../../../types/wire";
import { connectRedis, type RedisClient } from "../../../lib/redis";
import { dropPrefix, uniquePrefix } from "../backends";

const makeSource = (tenant: string, name: string): ToolSource => ({
	id: newId(),
	tenant_id: tenant,
	type: "mcp",
	name,
	url: "https://mcp.example.com/mcp",
	headers: { Authorization: "Bearer x" },
	health: { state: "unknown", failures: 0 },
	tools: {},
	removed: [],
	tool_count: 0,
	last_refresh_at: null,
	next_refresh_at: "2026-01-01T00:00:00.000Z",
	created_at: "2026-01-01T00:00:00.000Z",
	updated_at: "2026-01-01T00:00:00.000Z"
});

/**
 * The conformance suite of the source store: memory when `redisUrl()` is undefined, else the Redis (or
 * `redis+cluster://` cluster) it names, read when the suite runs.
 */
export function sourceStoreSuite(redisUrl: () => string | undefined): void {
	let store: SourceStore;
	let redis: RedisClient | undefined;
	let prefix: string;

	beforeEach(() => {
		prefix = uniquePrefix();
		redis = redisUrl() ? connectRedis(redisUrl()!) : undefined;
		store = redis ? new RedisSourceStore(redis, prefix) : new MemorySourceStore();
	});

	afterEach(async () => {
		await redis?.quit();
		if (redisUrl()) await dropPrefix(redisUrl()!, prefix);
	});

	it("stores a source and lists it in its tenant only, by name", async () => {
		const b = await store.create(makeSource("acme", "beta"));
		const a = await store.create(makeSource("acme", "alpha"));
		await store.create(makeSource("other", "gamma"));
		expect(await store.get(a.id)).toEqual(a);
		expect((await store.list("acme")).map(s => s.name)).toEqual(["alpha", "beta"]);
		expect((await store.ids()).sort()).toEqual(expect.arrayContaining([a.id, b.id]));
	});

	it("refuses a second source with the same name in a tenant but allows it in another", async () => {
		await store.create(makeSource("acme", "alpha"));
		await expect(store.create(makeSource("acme", "alpha"))).rejects.toMatchObject({ code: 409 });
		await expect(store.create(makeSource("other", "alpha"))).resolves.toMatchObject({ name: "alpha" });
	});

	it("applies concurrent updates one after the other, losing none", async () => {
		const source = await store.create(makeSource("acme", "alpha"));
		await Promise.all(
			Array.from({ length: 10 }, (_, i) =>
				store.update(source.id, current => ({ ...current, tools: { ...current.tools, [`t${i}`]: `id${i}` } }))
			)
		);
		expect(Object.keys((await store.get(source.id))!.tools)).toHaveLength(10);
	});

	it("removes a source and frees its name; updating a missing one resolves null", async () => {
		const source = await store.create(makeSource("acme", "alpha"));
		expect(await store.remove(source.id)).toMatchObject({ id: source.id });
		expect(await store.get(source.id)).toBeNull();
		expect(await store.ids()).not.toContain(source.id);
		expect(await store.update(source.id, current => current)).toBeNull();
		await expect(store.create(makeSource("acme", "alpha"))).resolves.toMatchObject({ name: "alpha" });
	});
}
