import type { StoredTool } from "../../types/wire";
import type { VectorStore } from "../store/vector-store";
import type { Embedder } from "./embedders/embedder";
import { embeddingText } from "./text";
import { decodeVector, encodeVector, quantize, type QuantizedVector } from "./vectors";

export interface ToolVectorsOptions {
	/** Hashes read from the store, and texts embedded, per round. */
	batchSize: number;
	/** How long a node may take to compute the vectors it claimed before another node may. */
	claimTtlMs: number;
	/** Wait before looking again for a vector another node is computing; doubled after each failure, up to a minute. */
	retryMs: number;
	/** This node's name in claims. */
	owner: string;
}

const MAX_RETRY_MS = 60_000;

/**
 * Tool vectors, computed in the background: whoever asks for the vector of a definition hash gets it
 * through `deliver` once it is in the store, read there if another node (or an earlier run) computed
 * it, computed here otherwise. A node computes only the hashes it claimed in the store, so nodes never
 * repeat each other's work; a hash someone else claimed is looked up again after `retryMs`.
 */
export class ToolVectors {
	/** Texts of the hashes asked for and not yet delivered. */
	private readonly wanted = new Map<string, string>();
	/** Hashes to look up again later (claimed elsewhere, or the embedder failed). */
	private readonly later = new Map<string, string>();
	private draining: Promise<void> | null = null;
	private retryTimer?: NodeJS.Timeout;
	private closed = false;
	private failures = 0;

	constructor(
		private readonly store: VectorStore,
		private readonly embedder: Embedder,
		private readonly deliver: (hash: string, vector: QuantizedVector) => void,
		private readonly options: ToolVectorsOptions
	) {}

	/** Asks for a tool's vector; delivered later, once. */
	request(tool: Pick<StoredTool, "definition_hash" | "name" | "description" | "parameters">): void {
		if (this.closed || this.wanted.has(tool.definition_hash)) return;
		this.wanted.set(tool.definition_hash, embeddingText(tool));
		this.later.delete(tool.definition_hash);
		this.draining ??= this.drain().finally(() => (this.draining = null));
	}

	/** Hashes asked for and not yet delivered (computing, claimed elsewhere, or waiting to retry). */
	get pending(): number {
		return this.wanted.size + this.later.size;
	}

	/** Resolves when nothing asked for so far is still being worked on here (tests, benchmarks). */
	async idle(): Promise<void> {
		while (this.draining) await this.draining;
	}

	close(): void {
		this.closed = true;
		clearTimeout(this.retryTimer);
		this.wanted.clear();
		this.later.clear();
	}

	private key(hash: string): string {
		return `${this.embedder.model}:${hash}`;
	}

	private async drain(): Promise<void> {
		// A macrotask first, so that a burst of requests (an index build) goes out in full batches.
		await new Promise(resolve => setImmediate(resolve));
		while (!this.closed && this.wanted.size) {
			const batch = [...this.wanted].slice(0, this.options.batchSize);
			try {
				await this.round(batch);
				this.failures = 0;
			} catch {
				this.failures++;
				for (const [hash, text] of batch) this.later.set(hash, text);
			} finally {
				for (const [hash] of batch) this.wanted.delete(hash);
			}
		}
		if (this.later.size && !this.closed) this.scheduleRetry();
	}

	private async round(batch: [string, string][]): Promise<void> {
		const stored = await this.store.get(batch.map(([hash]) => this.key(hash)));
		const missing: [string, string][] = [];
		batch.forEach((item, i) => {
			const vector = stored[i] && decodeVector(stored[i]);
			if (vector) this.deliver(item[0], vector);
			else missing.push(item);
		});
		const claimed = await Promise.all(
			missing.map(([hash]) => this.store.claim(this.key(hash), this.options.owner, this.options.claimTtlMs))
		);
		const mine = missing.filter((_, i) => claimed[i]);
		for (const [hash, text] of missing.filter((_, i) => !claimed[i])) this.later.set(hash, text);
		if (!mine.length) return;
		const vectors = await this.embedder.embed(
			mine.map(([, text]) => text),
			"background"
		);
		await Promise.all(
			mine.map(async ([hash], i) => {
				const vector = quantize(vectors[i]);
				await this.store.set(this.key(hash), encodeVector(vector));
				this.deliver(hash, vector);
			})
		);
	}

	private scheduleRetry(): void {
		if (this.retryTimer) return;
		this.retryTimer = setTimeout(
			() => {
				this.retryTimer = undefined;
				const again = [...this.later];
				this.later.clear();
				for (const [hash, text] of again) this.wanted.set(hash, text);
				this.draining ??= this.drain().finally(() => (this.draining = null));
			},
			Math.min(MAX_RETRY_MS, this.options.retryMs * 2 ** this.failures)
		);
		// Waiting for another node's vector is no reason to keep the process alive.
		this.retryTimer.unref();
	}
}
