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
	/** One Int32 claim state per expression, shared with the main thread. */
	states: SharedArrayBuffer;
}

/** Per expression: its value, its error, or why it was not evaluated (`null`: taken back by the main thread). */
export type CalculatorOutcome = { value: number | string } | { error: string } | { expired: true } | null;
