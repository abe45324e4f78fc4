/**
 * What the calculator's main-thread pool and its worker threads share: the batch they exchange and the
 * per-expression claim states kept in shared memory.
 */

/** A slot's states: a worker claims QUEUED → TAKEN → DONE; the main thread may take back QUEUED → STOLEN. */
export const QUEUED = 0;
export const TAKEN = 1;
export const DONE = 2;
export const STOLEN = 3;

export interface CalculatorBatch {
	expressions: string[];
	/** Epoch ms per expression after which its answer is no longer wanted: the worker skips it. */
	deadlines: number[];
	/** Shared with the main thread: see `batchViews`. */
	shared: SharedArrayBuffer;
}

export interface BatchViews {
	/** Claim state per expression. */
	states: Int32Array;
	/** Epoch ms at which the worker started each expression (written just before claiming it). */
	starts: Float64Array;
}

const startsOffset = (count: number) => Math.ceil((count * Int32Array.BYTES_PER_ELEMENT) / 8) * 8;

export function sharedBatchMemory(count: number): SharedArrayBuffer {
	return new SharedArrayBuffer(startsOffset(count) + count * Float64Array.BYTES_PER_ELEMENT);
}

export function batchViews(shared: SharedArrayBuffer, count: number): BatchViews {
	return {
		states: new Int32Array(shared, 0, count),
		starts: new Float64Array(shared, startsOffset(count), count)
	};
}

/** Per expression: its value, its error, or why it was not evaluated (`null`: taken back by the main thread). */
export type CalculatorOutcome = { value: number | string } | { error: string } | { expired: true } | null;

/** What a worker thread posts once it has loaded mathjs: from then on a batch given to it starts at once. */
export interface WorkerLoaded {
	calculatorWorkerLoaded: number;
}

export const isWorkerLoaded = (message: unknown): message is WorkerLoaded =>
	typeof message === "object" && message !== null && "calculatorWorkerLoaded" in message;
