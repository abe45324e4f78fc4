import path from "node:path";
import { Piscina } from "piscina";
import { normalize } from "../vectors";
import type { Embedder } from "./embedder";

interface Job {
	text: string;
	resolve(vector: Float32Array): void;
	reject(err: unknown): void;
}

export interface LocalEmbedderOptions {
	/** Worker threads, each holding its own copy of the model (about 100 MB). */
	threads: number;
	/** Most query texts sent to a worker at once. */
	maxQueryBatch: number;
	/**
	 * Most tool texts sent at once: small, because a query that arrives meanwhile waits for the batch
	 * in progress.
	 */
	maxBackgroundBatch: number;
}

const WORKER_FILE = path.join(__dirname, `local.worker${path.extname(__filename)}`);

/**
 * Universal Sentence Encoder lite run in worker threads (piscina), so a model that takes milliseconds
 * per text never holds the event loop. Texts that arrive while the workers are busy wait here and
 * leave together as one batch (one hand-off, one model call), queries before tool descriptions.
 * The model loads in the worker on its first batch, never during start-up.
 */
export class LocalEmbedder implements Embedder {
	readonly model = "use-lite-512";
	private pool?: Piscina<{ texts: string[] }, Float32Array>;
	private readonly queries: Job[] = [];
	private readonly background: Job[] = [];
	private running = 0;
	private flushScheduled = false;
	private closed = false;

	constructor(private readonly options: LocalEmbedderOptions) {}

	embed(texts: string[], priority: "query" | "background"): Promise<Float32Array[]> {
		if (this.closed) return Promise.reject(new Error("embedder closed"));
		const waiting = priority === "query" ? this.queries : this.background;
		const vectors = texts.map(
			text => new Promise<Float32Array>((resolve, reject) => waiting.push({ text, resolve, reject }))
		);
		this.scheduleFlush();
		return Promise.all(vectors);
	}

	async close(): Promise<void> {
		this.closed = true;
		const error = new Error("embedder closed");
		for (const job of this.queries.splice(0).concat(this.background.splice(0))) job.reject(error);
		await this.pool?.destroy();
	}

	/** After the current I/O phase, so that the requests read in it leave as one batch. */
	private scheduleFlush(): void {
		if (this.flushScheduled || this.running >= this.options.threads) return;
		this.flushScheduled = true;
		setImmediate(() => {
			this.flushScheduled = false;
			this.flush();
		});
	}

	private flush(): void {
		while (!this.closed && this.running < this.options.threads) {
			const batch = this.queries.length
				? this.queries.splice(0, this.options.maxQueryBatch)
				: this.background.splice(0, this.options.maxBackgroundBatch);
			if (!batch.length) return;
			this.running++;
			this.getPool()
				.run({ texts: batch.map(job => job.text) })
				.then(
					packed => {
						const dimensions = packed.length / batch.length;
						batch.forEach((job, i) =>
							job.resolve(normalize(packed.subarray(i * dimensions, (i + 1) * dimensions)))
						);
					},
					err => batch.forEach(job => job.reject(err))
				)
				.finally(() => {
					this.running--;
					this.flush();
				});
		}
	}

	private getPool(): Piscina<{ texts: string[] }, Float32Array> {
		if (!this.pool) {
			// Under ts-jest the worker is .ts source, which a worker thread can only load through ts-node.
			const source = path.extname(WORKER_FILE) === ".ts";
			this.pool = new Piscina({
				filename: WORKER_FILE,
				minThreads: 0,
				maxThreads: this.options.threads,
				// The model stays loaded: reloading it costs far more than the memory it holds.
				idleTimeout: 2 ** 31 - 1,
				execArgv: source ? ["-r", require.resolve("ts-node/register/transpile-only")] : undefined
			});
		}
		return this.pool;
	}
}
