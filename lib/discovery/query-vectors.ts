import { LRUCache } from "lru-cache";
import type { Embedder } from "./embedders/embedder";

export interface QueryVectorsOptions {
	/** Query vectors kept (least recently used dropped): agents ask the same things again and again. */
	cacheSize: number;
	/** Longest a discovery request waits for its query's vector before it ranks lexically alone. */
	waitMs: number;
	/** After a failure, semantic ranking pauses this long (doubling up to 60 s) before trying again. */
	retryMs: number;
}

const MAX_RETRY_MS = 60_000;

/**
 * Vectors of discovery queries: cached, computed once however many requests ask at the same time, and
 * never worth waiting for long. Until the embedder has answered once (the model may still be loading)
 * and while it fails, a request gets null at once and is ranked lexically; the vector is still
 * computed in the background, so the same question is answered semantically next time.
 */
export class QueryVectors {
	private readonly cache: LRUCache<string, Float32Array>;
	private readonly inFlight = new Map<string, Promise<Float32Array | null>>();
	private ready = false;
	private pausedUntil = 0;
	private retryMs: number;

	constructor(
		private readonly embedder: Embedder,
		private readonly options: QueryVectorsOptions,
		private readonly now: () => number = Date.now
	) {
		this.cache = new LRUCache({ max: options.cacheSize });
		this.retryMs = options.retryMs;
	}

	/** Whether semantic ranking can be expected to answer now. */
	get available(): boolean {
		return this.ready && this.now() >= this.pausedUntil;
	}

	async get(query: string): Promise<Float32Array | null> {
		const key = query.trim().replace(/\s+/g, " ");
		const cached = this.cache.get(key);
		if (cached) return cached;
		if (this.now() < this.pausedUntil) return null;
		let pending = this.inFlight.get(key);
		if (!pending) {
			pending = this.compute(key);
			this.inFlight.set(key, pending);
		}
		if (!this.ready) return null;
		let timer: NodeJS.Timeout | undefined;
		const late = new Promise<null>(resolve => (timer = setTimeout(resolve, this.options.waitMs, null)));
		try {
			return await Promise.race([pending, late]);
		} finally {
			clearTimeout(timer);
		}
	}

	private async compute(key: string): Promise<Float32Array | null> {
		try {
			const [vector] = await this.embedder.embed([key], "query");
			this.cache.set(key, vector);
			this.ready = true;
			this.retryMs = this.options.retryMs;
			return vector;
		} catch {
			this.pausedUntil = this.now() + this.retryMs;
			this.retryMs = Math.min(this.retryMs * 2, MAX_RETRY_MS);
			return null;
		} finally {
			this.inFlight.delete(key);
		}
	}
}
