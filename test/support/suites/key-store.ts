import { randomUUID } from "crypto";
import { connectRedis, type RedisClient } from "../../../lib/redis";
import type { KeyStore } from "../../../lib/store/key-store";
import { MemoryKeyStore } from "../../../lib/store/memory-key-store";
import { RedisKeyStore } from "../../../lib/store/redis-key-store";
import type { ApiKeyRecord } from "../../../types/wire";
import { dropPrefix, uniquePrefix } from "../backends";

const record = (tenant: string, createdAt: string): ApiKeyRecord => ({
	key_id: randomUUID(),
	tenant_id: tenant,
	agent_id: null,
	name: null,
	scopes: ["tools:read"],
	secret_hash: "hash",
	created_at: createdAt,
	revoked_at: null
});

/**
 * The conformance suite of the API key store: memory when `redisUrl()` is undefined, else the Redis
 * (or `redis+cluster://` cluster) it names, read when the suite runs.
 */
export function keyStoreSuite(redisUrl: () => string | undefined): void {
	let redis: RedisClient | undefined;
	let prefix: string;
	let store: KeyStore;

	beforeEach(() => {
		prefix = uniquePrefix();
		redis = redisUrl() ? connectRedis(redisUrl()!) : undefined;
		store = redis ? new RedisKeyStore(redis, prefix) : new MemoryKeyStore();
	});

	afterEach(async () => {
		await redis?.quit();
		if (redisUrl()) await dropPrefix(redisUrl()!, prefix);
	});

	it("finds a key by id and lists a tenant's keys oldest first with their last use", async () => {
		const older = record("acme", "2026-01-01T00:00:00.000Z");
		const newer = record("acme", "2026-01-02T00:00:00.000Z");
		const other = record("beta", "2026-01-01T00:00:00.000Z");
		for (const r of [older, other, newer]) await store.create(r);
		await store.touch("acme", newer.key_id, "2026-01-03T00:00:00.000Z");
		expect(await store.get(older.key_id)).toEqual(older);
		expect(await store.list("acme")).toEqual([
			{ ...older, last_used_at: null },
			{ ...newer, last_used_at: "2026-01-03T00:00:00.000Z" }
		]);
		expect(await store.get(randomUUID())).toBeNull();
	});

	it("keeps the first revocation time when revoked twice", async () => {
		const key = record("acme", "2026-01-01T00:00:00.000Z");
		await store.create(key);
		await Promise.all([
			store.revoke(key.key_id, "2026-02-01T00:00:00.000Z"),
			store.revoke(key.key_id, "2026-02-02T00:00:00.000Z")
		]);
		expect((await store.get(key.key_id))!.revoked_at).toMatch(/^2026-02-0[12]/);
		expect(await store.revoke(key.key_id, "2026-03-01T00:00:00.000Z")).toMatchObject({
			revoked_at: (await store.get(key.key_id))!.revoked_at
		});
		expect(await store.revoke(randomUUID(), "2026-03-01T00:00:00.000Z")).toBeNull();
	});
}
