import type { KeyStore } from "./key-store";
import { MemoryKeyStore } from "./memory-key-store";
import { RedisKeyStore } from "./redis-key-store";
import type { RedisClient } from "../redis";

/** Memory stores by broker: the gateway (which authenticates) and `keys` (which manages) share one. */
const memoryStores = new WeakMap<object, MemoryKeyStore>();

/** The key store a service of `broker` uses: the deployment's Redis keys, or this broker's memory store. */
export function keyStoreFor(broker: object, redis: RedisClient | null, redisPrefix: string): KeyStore {
	if (redis) return new RedisKeyStore(redis, redisPrefix);
	let store = memoryStores.get(broker);
	if (!store) memoryStores.set(broker, (store = new MemoryKeyStore()));
	return store;
}
