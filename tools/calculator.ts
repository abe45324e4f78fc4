import os from "node:os";
import path from "node:path";
import { Piscina } from "piscina";
import type { JsonObject } from "../types/wire";
import { type BaseTool, type ToolContext, ToolFailure } from "./base";
import type { CalculatorTask } from "./calculator.worker";

const MAX_EXPRESSION_LENGTH = 1000;
/** Longest any one evaluation may run, whatever the tool's own timeout. */
const MAX_EVALUATION_MS = 2000;
/** At least two threads, so one slow expression never stalls the next; at most four, to bound memory. */
const THREADS = Math.min(4, Math.max(2, os.availableParallelism() - 1));
/**
 * Evaluations running or waiting; more are refused at once rather than piling up in memory. A waiting
 * task holds one short string, and its time limit bounds the wait. Counted here because piscina's
 * `maxQueue` ignores tasks that carry an AbortSignal.
 */
const MAX_IN_FLIGHT = THREADS * 64;
const MAX_ERROR_CHARS = 300;

let pool: Piscina<CalculatorTask, number | string> | undefined;
let inFlight = 0;

function getPool(): Piscina<CalculatorTask, number | string> {
	if (!pool) {
		// Under ts-jest this file is .ts source, which a worker thread can only load through ts-node.
		const source = path.extname(__filename) === ".ts";
		pool = new Piscina({
			filename: path.join(__dirname, `calculator.worker${path.extname(__filename)}`),
			minThreads: 2,
			maxThreads: THREADS,
			idleTimeout: 30_000,
			// mathjs itself takes about 40 MB; a huge matrix kills only its own worker.
			resourceLimits: { maxOldGenerationSizeMb: 64, maxYoungGenerationSizeMb: 16 },
			execArgv: source ? ["-r", require.resolve("ts-node/register/transpile-only")] : undefined
		});
	}
	return pool;
}

/** Set once a worker has answered: from then on the time limit needs no start-up allowance. */
let warm = false;
/** A cold pool starts its workers (loading mathjs) before the first evaluation can begin. */
const START_UP_ALLOWANCE_MS = 15_000;

/**
 * Runs one evaluation in the pool with a hard limit counted from submission; when the limit or the
 * execution's own signal fires, piscina terminates the worker running it. No per-task message
 * channel: it cost more than the evaluation itself, and ports left in a busy worker filled its heap.
 */
async function evaluate(expression: string, limitMs: number, signal: AbortSignal): Promise<number | string> {
	if (inFlight >= MAX_IN_FLIGHT) {
		throw new ToolFailure("tool_error", "calculator busy, try again later");
	}
	// One controller for both causes: cheaper on the hot path than combining signals.
	const abort = new AbortController();
	let overBudget = false;
	const timer = setTimeout(
		() => {
			overBudget = true;
			abort.abort();
		},
		warm ? limitMs : limitMs + START_UP_ALLOWANCE_MS
	);
	const onAbort = () => abort.abort();
	signal.addEventListener("abort", onAbort, { once: true });
	inFlight++;
	try {
		const value = await getPool().run({ expression }, { signal: abort.signal });
		warm = true;
		return value;
	} catch (err) {
		throw failure(err, overBudget, signal.aborted, limitMs);
	} finally {
		inFlight--;
		clearTimeout(timer);
		signal.removeEventListener("abort", onAbort);
	}
}

function failure(err: unknown, overBudget: boolean, timedOut: boolean, limitMs: number): ToolFailure {
	if (overBudget) {
		return new ToolFailure("timeout", `calculation took longer than ${limitMs} ms`);
	}
	if (timedOut) {
		return new ToolFailure("timeout", "execution timed out before the calculation finished");
	}
	// Read as plain fields: errors cloned from a worker may belong to another realm (as under jest).
	const error: Partial<NodeJS.ErrnoException> = typeof err === "object" && err !== null ? err : {};
	if (error.code === "ERR_WORKER_OUT_OF_MEMORY") {
		return new ToolFailure("tool_error", "calculation needs too much memory");
	}
	if (error.name === "AbortError") {
		return new ToolFailure("tool_error", "calculator is shutting down");
	}
	return new ToolFailure("tool_error", String(error.message ?? err).slice(0, MAX_ERROR_CHARS));
}

export const calculatorTool: BaseTool = {
	type: "calculator",
	parameters: {
		type: "object",
		properties: {
			expression: {
				type: "string",
				minLength: 1,
				maxLength: MAX_EXPRESSION_LENGTH,
				description: "A math expression, e.g. \"sqrt(2) * 3\", \"sin(pi / 4)\" or \"5 km to m\""
			}
		},
		required: ["expression"],
		additionalProperties: false
	},
	configSchema: { type: "object", additionalProperties: false, properties: {} },

	async execute(params: JsonObject, _config: JsonObject, context: ToolContext): Promise<JsonObject> {
		const expression = params.expression;
		// Checked here too: a 100 KB string should not even be copied to a worker.
		if (typeof expression !== "string" || expression.trim() === "") {
			throw new ToolFailure("tool_error", "expression must be a non-empty string");
		}
		if (expression.length > MAX_EXPRESSION_LENGTH) {
			const message = `expression is longer than ${MAX_EXPRESSION_LENGTH} characters`;
			throw new ToolFailure("tool_error", message);
		}
		const limitMs = Math.max(1, Math.min(context.timeout_ms, MAX_EVALUATION_MS));
		return { value: await evaluate(expression, limitMs, context.signal) };
	},

	/** Starts the pool and loads mathjs in a worker, so the first caller does not pay for it. */
	async start(): Promise<void> {
		await evaluate("1", MAX_EVALUATION_MS, AbortSignal.timeout(30000)).catch(() => undefined);
	},

	async close(): Promise<void> {
		const closing = pool;
		pool = undefined;
		warm = false;
		await closing?.destroy();
	}
};
