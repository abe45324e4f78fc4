import Redis from "ioredis";
import type { EventStore } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import type { JSONRPCMessage } from "@modelcontextprotocol/sdk/types.js";
import type { McpSessionLogs } from "../../lib/mcp/event-log";
import { MemorySessionLogs } from "../../lib/mcp/memory-event-log";
import { MemoryMcpTaskIndex } from "../../lib/mcp/memory-task-index";
import { RedisSessionLogs } from "../../lib/mcp/redis-event-log";
import { RedisMcpTaskIndex } from "../../lib/mcp/redis-task-index";
import type { McpTaskIndex } from "../../lib/mcp/task-index";
import { BACKENDS, dropPrefix, uniquePrefix } from "../support/backends";

const message = (id: number): JSONRPCMessage => ({ jsonrpc: "2.0", id, result: {} });
const priming = {} as JSONRPCMessage;

describe.each(BACKENDS)("MCP session logs on $name", ({ name, redisUrl }) => {
	let redis: Redis | undefined;
	let prefix: string;
	const logsWith = (capacity = 256, ttlMs = 60000): McpSessionLogs =>
		redis ? new RedisSessionLogs(redis, prefix, { capacity, ttlMs }) : new MemorySessionLogs({ capacity });
	const replay = async (store: EventStore, after: string) => {
		const sent: [string, unknown][] = [];
		const streamId = await store.replayEventsAfter(after, {
			send: async (id, msg) => void sent.push([id, msg])
		});
		return { streamId, sent };
	};

	beforeEach(() => {
		prefix = uniquePrefix();
		redis = redisUrl ? new Redis(redisUrl) : undefined;
	});

	afterEach(async () => {
		await redis?.quit();
		if (redisUrl) await dropPrefix(redisUrl, prefix);
	});

	it("replays what came after the last event id, on that stream only, without priming events", async () => {
		const logs = logsWith();
		const store = logs.eventStore("s1");
		const primed = await store.storeEvent("post-1", priming);
		await store.storeEvent("_GET_stream", message(1));
		const answer = await store.storeEvent("post-1", message(2));
		await store.storeEvent("post-2", priming);
		const { streamId, sent } = await replay(store, primed);
		expect(streamId).toBe("post-1");
		expect(sent).toEqual([[answer, message(2)]]);
		expect(await store.getStreamIdForEventId!(answer)).toBe("post-1");
	});

	it("keeps the sessions apart, though the SDK names their GET streams alike", async () => {
		const logs = logsWith();
		const a = logs.eventStore("a");
		const b = logs.eventStore("b");
		const first = await a.storeEvent("_GET_stream", message(1));
		await b.storeEvent("_GET_stream", message(2));
		await b.storeEvent("_GET_stream", message(3));
		await a.storeEvent("_GET_stream", message(4));
		const { sent } = await replay(a, first);
		expect(sent.map(([, msg]) => msg)).toEqual([message(4)]);
	});

	it("keeps at most its capacity and refuses a replay from a forgotten or unknown event", async () => {
		const logs = logsWith(2);
		const store = logs.eventStore("s");
		const first = await store.storeEvent("s", message(1));
		await store.storeEvent("s", message(2));
		await store.storeEvent("s", message(3));
		await expect(replay(store, first)).rejects.toThrow("no longer kept");
		for (const unknown of ["999", "not-a-number", "0", "-1"]) {
			expect(await store.getStreamIdForEventId!(unknown)).toBeUndefined();
			await expect(replay(store, unknown)).rejects.toThrow("no longer kept");
		}
	});

	if (name === "memory")
		it("lets no other process resume a session: nothing is shared", async () => {
			const logs = logsWith();
			await logs.claim("s", "tenant:agent");
			expect(await logs.ownerOf("s")).toBeNull();
		});
	else
		it("shares the owner and the events with every node, renews them, and forgets them on request", async () => {
			const here = logsWith(256, 60000);
			const there = logsWith(256, 60000);
			await here.claim("s", "tenant:agent");
			const primed = await here.eventStore("s").storeEvent("post-1", priming);
			const answer = await here.eventStore("s").storeEvent("post-1", message(7));
			expect(await there.ownerOf("s")).toBe("tenant:agent");
			expect(await replay(there.eventStore("s"), primed)).toEqual({
				streamId: "post-1",
				sent: [[answer, message(7)]]
			});
			// Bounded in time: every key expires, within the TTL.
			const keys = await redis!.keys(`${prefix}*`);
			expect(keys).toHaveLength(3);
			for (const key of keys) expect(await redis!.pttl(key)).toBeGreaterThan(50000);
			// Event ids keep rising across nodes: another node appends after this one.
			expect(Number(await there.eventStore("s").storeEvent("post-1", message(8)))).toBe(Number(answer) + 1);
			await there.forget("s");
			expect(await here.ownerOf("s")).toBeNull();
			expect(await redis!.keys(`${prefix}*`)).toEqual([]);
		});
});

describe.each(BACKENDS)("MCP task index on $name", ({ redisUrl }) => {
	let redis: Redis | undefined;
	let prefix: string;
	let index: McpTaskIndex;

	beforeEach(() => {
		prefix = uniquePrefix();
		redis = redisUrl ? new Redis(redisUrl) : undefined;
		const options = { maxPerOwner: 3, ttlMs: 60000 };
		index = redis ? new RedisMcpTaskIndex(redis, prefix, options) : new MemoryMcpTaskIndex(options);
	});

	afterEach(async () => {
		await redis?.quit();
		if (redisUrl) await dropPrefix(redisUrl, prefix);
	});

	it("pages an owner's tasks newest first, keeps the newest few, and keeps owners apart", async () => {
		for (const id of ["t1", "t2", "t3", "t4"]) await index.add("alice", id);
		await index.add("bob", "b1");
		const first = await index.page("alice", undefined, 2);
		expect(first.ids).toEqual(["t4", "t3"]);
		const second = await index.page("alice", first.last, 2);
		expect(second).toEqual({ ids: ["t2"] });
		expect(await index.has("alice", "t1")).toBe(false);
		expect(await index.has("alice", "b1")).toBe(false);
		expect(await index.has("bob", "b1")).toBe(true);

		// A task added while paging does not shift the pages already handed out.
		await index.add("bob", "b2");
		const newest = await index.page("bob", undefined, 1);
		expect(newest.ids).toEqual(["b2"]);
		await index.add("bob", "b3");
		expect((await index.page("bob", newest.last, 1)).ids).toEqual(["b1"]);

		await index.remove("alice", ["t2", "t3"]);
		expect((await index.page("alice", undefined, 10)).ids).toEqual(["t4"]);
	});
});
