import { MemoryVectorStore } from "../../../lib/store/memory-vector-store";
import { RedisVectorStore } from "../../../lib/store/redis-vector-store";
import type { VectorStore } from "../../../lib/store/vector-store";
import { connectRedis, type RedisClient } from "../../../lib/redis";
import { dropPrefix, uniquePrefix } from "../backends";
import { until } from "../eventually";

/**
 * The conformance suite of the vector store: memory when `redisUrl()` is undefined, else the Redis (or
 * `redis+cluster://` cluster) it names, read when the suite runs.
 */
export function vectorStoreSuite(redisUrl: () => string | undefined): void {
	const prefix = uniquePrefix();
	let redis: RedisClient | undefined;
	let store: VectorStore;

	beforeAll(() => {
		redis = redisUrl() ? connectRedis(redisUrl()!) : undefined;
		store = redis ? new RedisVectorStore(redis, prefix) : new MemoryVectorStore();
	});

	afterAll(async () => {
		await redis?.quit();
		if (redisUrl()) await dropPrefix(redisUrl()!, prefix);
	});

	it("answers stored vectors in the order asked, null where there is none", async () => {
		await store.set("m:a", Buffer.from([1, 2, 3, 4, 5]));
		expect(await store.get(["m:missing", "m:a"])).toEqual([null, Buffer.from([1, 2, 3, 4, 5])]);
		expect(await store.get([])).toEqual([]);
	});

	it("grants a claim to one owner until it expires, renewing it for that owner, even after the vector is stored", async () => {
		expect(await store.claim("m:c", "node-1", 300)).toBe(true);
		expect(await store.claim("m:c", "node-2", 300)).toBe(false);
		expect(await store.claim("m:c", "node-1", 300)).toBe(true);
		await store.set("m:c", Buffer.from([9, 9, 9, 9, 9]));
		expect(await store.claim("m:c", "node-2", 300)).toBe(false);
		// Once it has expired, the next owner gets it.
		await until("node-1's claim to expire", () => store.claim("m:c", "node-2", 300), 5000, 25);
	});
}
