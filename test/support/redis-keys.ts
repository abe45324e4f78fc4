import { isCluster, scanKeys, type RedisClient } from "../../lib/redis";

/** Deletes every key under `prefix`, on every master of a cluster (no Jest globals here, so benchmarks can use it too). */
export async function deleteKeysWithPrefix(redis: RedisClient, prefix: string): Promise<void> {
	for await (const keys of scanKeys(redis, `${prefix}*`, 1000))
		// A cluster refuses a DEL of keys in several slots.
		if (isCluster(redis)) await Promise.all(keys.map(key => redis.del(key)));
		else await redis.del(...keys);
}
