import { runScript, type RedisClient } from "../redis";
import type { VectorStore } from "./vector-store";

/** Takes a free or expired claim, or renews the owner's own. */
const CLAIM_SCRIPT = `
local owner = redis.call('GET', KEYS[1])
if owner and owner ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
`;

/** A vector no tool has read for this long expires (deleted and edited tools leave theirs behind). */
const TTL_S = 30 * 24 * 3600;

/**
 * Layout under the prefix: `vector:{model}:{hash}` → encoded vector (expiry refreshed on every read),
 * `vector-claim:{model}:{hash}` → the claiming node, until the claim expires: kept after the vector is
 * stored, so a node that missed the vector a moment ago cannot claim and compute it again. One key
 * per command, so keys may live in any Redis Cluster slot.
 */
export class RedisVectorStore implements VectorStore {
	constructor(
		private readonly redis: RedisClient,
		private readonly prefix: string
	) {}

	async get(keys: string[]): Promise<(Buffer | null)[]> {
		if (!keys.length) return [];
		// One command per key (auto-pipelined, per node on a cluster): the keys are in many slots.
		return Promise.all(keys.map(key => this.redis.getexBuffer(`${this.prefix}vector:${key}`, "EX", TTL_S)));
	}

	async set(key: string, vector: Buffer): Promise<void> {
		await this.redis.set(`${this.prefix}vector:${key}`, vector, "EX", TTL_S);
	}

	async claim(key: string, owner: string, ttlMs: number): Promise<boolean> {
		return (
			(await runScript(this.redis, CLAIM_SCRIPT, 1, `${this.prefix}vector-claim:${key}`, owner, ttlMs)) === 1
		);
	}
}
