import type Redis from "ioredis";

/** Deletes every key under `prefix` (no Jest globals here, so benchmarks can use it too). */
export async function deleteKeysWithPrefix(redis: Redis, prefix: string): Promise<void> {
	let cursor = "0";
	do {
		const [next, keys] = await redis.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 1000);
		cursor = next;
		if (keys.length) await redis.del(...keys);
	} while (cursor !== "0");
}
