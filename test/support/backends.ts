import { connectRedis } from "../../lib/redis";
import { deleteKeysWithPrefix } from "./redis-keys";
import { randomUUID } from "crypto";

/** A Redis key prefix of its own for every suite, so suites never see each other's data. */
export const uniquePrefix = (): string => `test-${randomUUID()}:`;

/** The store backends every store-dependent suite runs against (Redis only when reachable). */
export const BACKENDS: { name: string; redisUrl?: string }[] = [
	{ name: "memory" },
	...(process.env.TEST_REDIS_URL ? [{ name: "redis", redisUrl: process.env.TEST_REDIS_URL }] : [])
];

export const describeWithRedis = process.env.TEST_REDIS_URL ? describe : describe.skip;
export const describeWithNats = process.env.TEST_NATS_URL ? describe : describe.skip;

/** Deletes every key a suite wrote under its prefix. */
export async function dropPrefix(redisUrl: string, prefix: string): Promise<void> {
	const redis = connectRedis(redisUrl);
	try {
		await deleteKeysWithPrefix(redis, prefix);
	} finally {
		await redis.quit();
	}
}
