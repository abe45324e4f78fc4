import { LRUCache } from "lru-cache";
import type { VectorStore } from "./vector-store";

/** One process's vectors. Bounded: a vector no longer read is dropped before one in use. */
export class MemoryVectorStore implements VectorStore {
	private readonly vectors: LRUCache<string, Buffer>;
	/** Kept until they expire, as in Redis (see RedisVectorStore); bounded like the vectors. */
	private readonly claims: LRUCache<string, { owner: string; until: number }>;

	constructor(
		maxVectors = 200_000,
		private readonly now: () => number = Date.now
	) {
		this.vectors = new LRUCache({ max: maxVectors });
		this.claims = new LRUCache({ max: maxVectors });
	}

	async get(keys: string[]): Promise<(Buffer | null)[]> {
		return keys.map(key => this.vectors.get(key) ?? null);
	}

	async set(key: string, vector: Buffer): Promise<void> {
		this.vectors.set(key, vector);
	}

	async claim(key: string, owner: string, ttlMs: number): Promise<boolean> {
		const current = this.claims.get(key);
		if (current && current.owner !== owner && current.until > this.now()) return false;
		this.claims.set(key, { owner, until: this.now() + ttlMs });
		return true;
	}
}
