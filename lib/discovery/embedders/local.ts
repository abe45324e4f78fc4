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
	/** Worker threads for queries, each holding its own copy of the model (about 100 MB). */
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

type Priority = "query" | "background";

/**
 * Universal Sentence Encoder lite run in worker threads (piscina), so a model that takes milliseconds
 * per text never holds the event loop. Texts that arrive while the workers are busy wait here and
 * leave together as one batch (one hand-off, one model call). Queries have `threads` workers of
 * their own; tool descriptions go to one more worker that runs at the lowest CPU priority
 * (./local.worker.ts), so that embedding a burst of registrations (~10–30 ms of CPU per tool) takes
 * only CPU nothing else wants instead of a core from the gateway. A pool starts on its first batch,
 * never during start-up; the query pool then starts all its threads, each loading its model, so that
 * the first burst of queries does not wait for a second thread's model (seconds on a busy machine).
 */
export class LocalEmbedder implements Embedder {
	readonly model = "use-lite-512";
	private readonly pools: Partial<Record<Priority, Piscina<{ texts: string[] }, Float32Array>>> = {};
	private readonly waiting: Record<Priority, Job[]> = { query: [], background: [] };
	private readonly running: Record<Priority, number> = { query: 0, background: 0 };
	private flushScheduled = false;
	private closed = false;

	constructor(private readonly options: LocalEmbedderOptions) {}

	embed(texts: string[], priority: Priority): Promise<Float32Array[]> {
		if (this.closed) return Promise.reject(new Error("embedder closed"));
		const waiting = this.waiting[priority];
		const vectors = texts.map(
			text => new Promise<Float32Array>((resolve, reject) => waiting.push({ text, resolve, reject }))
		);
		this.scheduleFlush();
		return Promise.all(vectors);
	}

	async close(): Promise<void> {
		this.closed = true;
		const error = new Error("embedder closed");
		for (const job of this.waiting.query.splice(0).concat(this.waiting.background.splice(0)))
			job.reject(error);
		await Promise.all(Object.values(this.pools).map(pool => pool.destroy()));
	}

	/** After the current I/O phase, so that the requests read in it leave as one batch. */
	private scheduleFlush(): void {
		if (this.flushScheduled) return;
		this.flushScheduled = true;
		setImmediate(() => {
			this.flushScheduled = false;
			this.flush("query");
			this.flush("background");
		});
	}

	private flush(priority: Priority): void {
		const threads = priority === "query" ? this.options.threads : 1;
		const most = priority === "query" ? this.options.maxQueryBatch : this.options.maxBackgroundBatch;
		while (!this.closed && this.running[priority] < threads) {
			const batch = this.waiting[priority].splice(0, most);
			if (!batch.length) return;
			this.running[priority]++;
			this.pool(priority)
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
					this.running[priority]--;
					this.flush(priority);
				});
		}
	}

	private pool(priority: Priority): Piscina<{ texts: string[] }, Float32Array> {
		let pool = this.pools[priority];
		if (!pool) {
			// Under ts-jest the worker is .ts source, which a worker thread can only load through ts-node.
			const source = path.extname(WORKER_FILE) === ".ts";
			const threads = priority === "query" ? this.options.threads : 1;
			pool = this.pools[priority] = new Piscina({
				filename: WORKER_FILE,
				minThreads: threads,
				maxThreads: threads,
				// The model stays loaded: reloading it costs far more than the memory it holds.
				idleTimeout: 2 ** 31 - 1,
				workerData: { background: priority === "background" },
				execArgv: source ? ["-r", require.resolve("ts-node/register/transpile-only")] : undefined
			});
		}
		return pool;
	}
}
