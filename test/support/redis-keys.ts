import { isCluster, scanKeys, type RedisClient } from "../../lib/redis";

/** Deletes every key under `prefix`, on every master of a cluster (no Jest globals here, so benchmarks can use it too). */
export async function deleteKeysWithPrefix(redis: RedisClient, prefix: string): Promise<void> {
	for await (const keys of scanKeys(redis, `${prefix}*`, 1000))
		// A cluster refuses a DEL of keys in several slots.
		if (isCluster(redis)) await Promise.all(keys.map(key => redis.del(key)));
		else await redis.del(...keys);
}

/** Every value of every key under `prefix`, read by type, as text. */
export async function everyValue(redis: RedisClient, prefix: string): Promise<string[]> {
	const values: string[] = [];
	for await (const keys of scanKeys(redis, `${prefix}*`))
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
	return values;
}
