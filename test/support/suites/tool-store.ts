import { newId } from "../../../lib/ids";
import { MemoryToolStore } from "../../../lib/store/memory-tool-store";
import { RedisToolStore } from "../../../lib/store/redis-tool-store";
import type { ToolStore } from "../../../lib/store/tool-store";
import type { StoredTool } from "../../../types/wire";
import { connectRedis, type RedisClient } from "../../../lib/redis";
import { dropPrefix, uniquePrefix } from "../backends";

const makeTool = (tenant: string, name: string, extra: Partial<StoredTool> = {}): StoredTool => ({
	id: newId(),
	tenant_id: tenant,
	name,
	description: "",
	type: "calculator",
	parameters: { type: "object", properties: {} },
	config: {},
	metadata: {},
	permissions: { agents: ["*"] },
	timeout_ms: 5000,
	version: 1,
	definition_hash: "sha256:test",
	status: "active",
	health: { state: "unknown" },
	created_at: "2026-01-01T00:00:00.000Z",
	updated_at: "2026-01-01T00:00:00.000Z",
	...extra
});

/**
 * The conformance suite of the tool store: memory when `redisUrl()` is undefined, else the Redis (or
 * `redis+cluster://` cluster) it names, read when the suite runs.
 */
export function toolStoreSuite(redisUrl: () => string | undefined): void {
	let store: ToolStore;
	let redis: RedisClient | undefined;
	let prefix: string;

	beforeEach(() => {
		prefix = uniquePrefix();
		redis = redisUrl() ? connectRedis(redisUrl()!) : undefined;
		store = redis ? new RedisToolStore(redis, prefix) : new MemoryToolStore();
	});

	afterEach(async () => {
		await redis?.quit();
		if (redisUrl()) await dropPrefix(redisUrl()!, prefix);
	});

	it("stores a tool and finds it by id and by name within its tenant", async () => {
		const tool = await store.create(makeTool("acme", "alpha"));
		expect(await store.get(tool.id)).toEqual(tool);
		expect(await store.findByName("acme", "alpha")).toEqual(tool);
		expect(await store.findByName("other", "alpha")).toBeNull();
	});

	it("refuses a second tool with the same name in a tenant but allows it in another", async () => {
		await store.create(makeTool("acme", "alpha"));
		await expect(store.create(makeTool("acme", "alpha"))).rejects.toMatchObject({
			code: 409,
			type: "CONFLICT"
		});
		await expect(store.create(makeTool("other", "alpha"))).resolves.toMatchObject({ tenant_id: "other" });
	});

	it("lets exactly one of many concurrent creations of one name win", async () => {
		const results = await Promise.allSettled(
			Array.from({ length: 25 }, () => store.create(makeTool("acme", "race")))
		);
		expect(results.filter(r => r.status === "fulfilled")).toHaveLength(1);
		expect(results.filter(r => r.status === "rejected")).toHaveLength(24);
	});

	it("applies an update, keeps the history and rejects a stale expected version", async () => {
		const tool = await store.create(makeTool("acme", "alpha"));
		const updated = await store.update(
			tool.id,
			t => ({ ...t, description: "v2", version: t.version + 1 }),
			1
		);
		expect(updated).toMatchObject({ description: "v2", version: 2 });
		await expect(store.update(tool.id, t => ({ ...t, version: t.version + 1 }), 1)).rejects.toMatchObject({
			code: 409,
			data: { current_version: 2 }
		});
		expect(await store.getVersion(tool.id, 1)).toMatchObject({ description: "", version: 1 });
		expect(await store.getVersion(tool.id, 2)).toMatchObject({ description: "v2", version: 2 });
	});

	it("lets exactly one of concurrent updates with the same expected version win", async () => {
		const tool = await store.create(makeTool("acme", "alpha"));
		const results = await Promise.allSettled(
			Array.from({ length: 10 }, (_, i) =>
				store.update(tool.id, t => ({ ...t, description: `writer ${i}`, version: t.version + 1 }), 1)
			)
		);
		expect(results.filter(r => r.status === "fulfilled")).toHaveLength(1);
		expect((await store.get(tool.id))?.version).toBe(2);
	});

	it("moves the name index on rename and refuses a rename onto a taken name", async () => {
		const a = await store.create(makeTool("acme", "alpha"));
		await store.create(makeTool("acme", "beta"));
		await expect(store.update(a.id, t => ({ ...t, name: "beta" }))).rejects.toMatchObject({ code: 409 });
		await store.update(a.id, t => ({ ...t, name: "gamma" }));
		expect(await store.findByName("acme", "alpha")).toBeNull();
		expect((await store.findByName("acme", "gamma"))?.id).toBe(a.id);
	});

	it("resolves null when updating or removing a missing tool", async () => {
		expect(await store.update(newId(), t => t)).toBeNull();
		expect(await store.remove(newId())).toBeNull();
	});

	it("removes a tool with its name and history", async () => {
		const tool = await store.create(makeTool("acme", "alpha"));
		expect(await store.remove(tool.id)).toMatchObject({ id: tool.id });
		expect(await store.get(tool.id)).toBeNull();
		expect(await store.getVersion(tool.id, 1)).toBeNull();
		expect(await store.findByName("acme", "alpha")).toBeNull();
		await expect(store.create(makeTool("acme", "alpha"))).resolves.toBeTruthy();
	});

	it("pages through two tenants merged in creation order without gaps or repeats", async () => {
		const created: StoredTool[] = [];
		for (let i = 0; i < 450; i++)
			created.push(await store.create(makeTool(i % 3 === 0 ? "*" : "acme", `tool_${i}`)));
		await store.create(makeTool("other", "hidden"));
		const seen: string[] = [];
		let after: string | undefined;
		for (;;) {
			const page = await store.list(["acme", "*"], {}, 70, after);
			seen.push(...page.items.map(t => t.id));
			if (!page.last_id) break;
			expect(page.items).toHaveLength(70);
			after = page.last_id;
		}
		expect(seen).toEqual(created.map(t => t.id));
	});

	it("filters by type, tag and status before counting the page", async () => {
		await store.create(makeTool("acme", "a", { type: "datetime", metadata: { tags: ["time"] } }));
		await store.create(makeTool("acme", "b", { status: "disabled" }));
		await store.create(makeTool("acme", "c", { metadata: { tags: ["time", "x"] } }));
		const byType = await store.list(["acme"], { type: "datetime" }, 10);
		expect(byType.items.map(t => t.name)).toEqual(["a"]);
		expect((await store.list(["acme"], { tag: "time" }, 10)).items.map(t => t.name)).toEqual(["a", "c"]);
		expect((await store.list(["acme"], { status: "disabled" }, 10)).items.map(t => t.name)).toEqual(["b"]);
		const firstOfTag = await store.list(["acme"], { tag: "time" }, 1);
		expect(firstOfTag.items.map(t => t.name)).toEqual(["a"]);
		expect(firstOfTag.last_id).toBe(firstOfTag.items[0].id);
	});

	it("pages in id order through a tool created after one with a later id", async () => {
		const [earlier, later] = [newId(), newId()];
		await store.create(makeTool("acme", "b", { id: later }));
		await store.create(makeTool("acme", "a", { id: earlier }));
		await store.create(makeTool("acme", "c"));
		let page = await store.list(["acme"], {}, 1);
		const names = page.items.map(t => t.name);
		while (page.last_id) {
			page = await store.list(["acme"], {}, 1, page.last_id);
			names.push(...page.items.map(t => t.name));
		}
		expect(names).toEqual(["a", "b", "c"]);
	});

	it("reports no next page when the last page is exactly full", async () => {
		await store.create(makeTool("acme", "a"));
		await store.create(makeTool("acme", "b"));
		expect((await store.list(["acme"], {}, 2)).last_id).toBeNull();
	});

	it("counts every write of a tenant in its revision, and nothing for an unchanged update", async () => {
		expect(await store.revisions(["acme", "*"])).toEqual([0, 0]);
		const tool = await store.create(makeTool("acme", "a"));
		await store.update(tool.id, t => ({ ...t, description: "x" }));
		await store.update(tool.id, t => t);
		await store.create(makeTool("*", "g"));
		expect(await store.revisions(["acme", "*", "other"])).toEqual([2, 1, 0]);
		await store.remove(tool.id);
		expect(await store.revisions(["acme"])).toEqual([3]);
	});
}
