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

/** Every value of every key under `prefix`, read by type, as text. */
export async function everyValue(redis: Redis, prefix: string): Promise<string[]> {
	const values: string[] = [];
	let cursor = "0";
	do {
		const [next, keys] = await redis.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 500);
		cursor = next;
		for (const key of keys) {
			const type = await redis.type(key);
			if (type === "string") values.push((await redis.get(key)) ?? "");
			else if (type === "hash") values.push(JSON.stringify(await redis.hgetall(key)));
			else if (type === "list") values.push(JSON.stringify(await redis.lrange(key, 0, -1)));
			else if (type === "set") values.push(JSON.stringify(await redis.smembers(key)));
			else if (type === "zset") values.push(JSON.stringify(await redis.zrange(key, 0, -1, "WITHSCORES")));
			else if (type === "stream") values.push(JSON.stringify(await redis.xrange(key, "-", "+")));
			else values.push(`unreadable ${type} ${key}`);
			values.push(key);
		}
	} while (cursor !== "0");
	return values;
}
