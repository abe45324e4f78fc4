import path from "node:path";
import { Errors } from "moleculer";
import { Piscina } from "piscina";
import type Ajv2020 from "ajv/dist/2020";
import { stopping } from "./errors";
import { checkParametersSchema, SchemaCache, toProblems } from "./json-schema";
import type { JsonObject, ValidationProblem } from "../types/wire";

/** Work a schema thread does: check (and compile) a tenant schema, or validate data against one. */
export type SchemaTask =
	| { kind: "check"; schema: JsonObject; field: string }
	| { kind: "validate"; key: string; schema: JsonObject; dataJson: string; field: string };
export type SchemaTaskResult = ValidationProblem[];

export interface SchemaGuardOptions {
	/**
	 * Largest compile cost (schema bytes, plus PATTERN_COST per pattern) compiled inline. ajv needs
	 * about 30 µs per schema byte and RE2 about 3.5 ms per pattern, so 2 KiB stays near 60 ms.
	 */
	inlineCompileCost: number;
	/**
	 * Largest schema bytes × data bytes validated inline: an `anyOf` of patterns over an array tries
	 * every pattern on every item (about 5 µs each), so only small × small stays on the loop.
	 */
	inlineValidateCost: number;
	/** Longest a thread may work on one schema before it is stopped and the request refused (422). */
	timeoutMs: number;
	/** Tasks waiting for a thread; more are refused at once (503) rather than queued without bound. */
	maxQueue: number;
}

export const DEFAULT_SCHEMA_GUARD: SchemaGuardOptions = {
	inlineCompileCost: 2048,
	inlineValidateCost: 256 * 1024,
	timeoutMs: 1000,
	maxQueue: 64
};

/** A cold pool starts a thread (loading ajv) before its first task can begin. */
const START_UP_ALLOWANCE_MS = 15_000;

/** Compile cost of one `pattern` / `patternProperties`, in schema bytes. */
const PATTERN_COST = 120;

/**
 * Whether `value` would serialise to more than `limit` bytes, counted roughly (keys, strings, ~8 per
 * number). Stops as soon as the limit is passed, so a huge argument costs no more than a small one.
 */
function largerThan(value: unknown, limit: number): boolean {
	const stack = [value];
	let size = 0;
	while (stack.length > 0 && size <= limit) {
		const item = stack.pop();
		if (typeof item === "string") size += item.length + 2;
		else if (Array.isArray(item)) {
			size += 2 + item.length;
			if (size <= limit) stack.push(...item);
		} else if (item !== null && typeof item === "object") {
			size += 2;
			for (const key in item) {
				size += key.length + 4;
				stack.push((item as Record<string, unknown>)[key]);
			}
		} else size += 8;
	}
	return size > limit;
}

/** What compiling `json` (a serialised schema) costs, in schema bytes; a property named like a keyword counts too. */
const compileCost = (json: string) => json.length + PATTERN_COST * (json.split('"pattern').length - 1);

/**
 * Keeps tenant JSON Schema work from blocking the event loop for more than a few milliseconds. Cheap
 * work (a small schema and small data) runs inline with a cached compiled validator; anything larger
 * runs on a worker thread under a time limit, so a hostile schema or argument costs a thread, never
 * the loop, and is refused when it overruns.
 */
export class SchemaGuard {
	private pool?: Piscina<SchemaTask, SchemaTaskResult>;
	/** Set once a thread has answered: until then the limit also covers starting one (loading ajv). */
	private warm = false;
	/** Set by `close`: a stopped service's guard starts no thread again. */
	private closed = false;
	private readonly inline: SchemaCache;

	constructor(
		private readonly ajv: Ajv2020,
		private readonly options: SchemaGuardOptions = DEFAULT_SCHEMA_GUARD,
		cacheSize = 5000
	) {
		this.inline = new SchemaCache(ajv, cacheSize);
	}

	/** Problems of a tenant's `parameters` schema (shape, size, meta-schema, compilability). */
	async check(schema: JsonObject, field = "parameters"): Promise<ValidationProblem[]> {
		if (compileCost(JSON.stringify(schema)) <= this.options.inlineCompileCost)
			return checkParametersSchema(this.ajv, schema, field);
		return this.offload({ kind: "check", schema, field }, "is too costly to compile");
	}

	/**
	 * Problems of `data` against `schema`, whose compiled form is cached under `key` (tool id and
	 * version); `field` names the data in the problems (`parameters`, or `result` for output).
	 */
	async validate(
		key: string,
		schema: JsonObject,
		data: unknown,
		field = "parameters"
	): Promise<ValidationProblem[]> {
		// A compiled schema's size is remembered: serialising it again on every call cost more than validating.
		const compiled = this.inline.lookup(key);
		const json = compiled ? "" : JSON.stringify(schema);
		const schemaBytes = compiled?.schemaBytes ?? json.length;
		const cheap =
			(compiled !== undefined || compileCost(json) <= this.options.inlineCompileCost) &&
			!largerThan(data, this.options.inlineValidateCost / schemaBytes);
		if (cheap) {
			const validate = compiled?.validate ?? this.inline.get(key, schema, schemaBytes);
			return validate(data) ? [] : toProblems(validate.errors, field);
		}
		// A string crosses to the thread far faster than a structured clone of the same object.
		return this.offload(
			{ kind: "validate", key, schema, dataJson: JSON.stringify(data), field },
			"are too costly to validate against this schema"
		);
	}

	async close(): Promise<void> {
		this.closed = true;
		const pool = this.pool;
		this.pool = undefined;
		this.warm = false;
		await pool?.destroy();
	}

	/** Runs `task` on a thread; past the time limit the thread is stopped and the work refused as a problem. */
	private async offload(task: SchemaTask, overran: string): Promise<ValidationProblem[]> {
		if (this.closed) throw stopping();
		const pool = this.getPool();
		if (pool.queueSize >= this.options.maxQueue)
			throw new Errors.MoleculerRetryableError(
				"Schema validation is busy, try again later",
				503,
				"SERVICE_UNAVAILABLE"
			);
		try {
			// Aborting terminates the thread: an overrunning validation cannot be interrupted otherwise.
			const limitMs = this.options.timeoutMs + (this.warm ? 0 : START_UP_ALLOWANCE_MS);
			const problems = await pool.run(task, { signal: AbortSignal.timeout(limitMs) });
			this.warm = true;
			return problems;
		} catch (err) {
			// The thread was stopped at the limit, or died of its memory cap: either way this work costs too much.
			const { name, code } = err as NodeJS.ErrnoException;
			if (name !== "AbortError" && code !== "ERR_WORKER_OUT_OF_MEMORY") throw err;
			// Its replacement starts cold.
			this.warm = false;
			const field = task.kind === "check" ? task.field : "parameters";
			return [{ field, message: `${overran} (limit ${this.options.timeoutMs} ms)` }];
		}
	}

	private getPool(): Piscina<SchemaTask, SchemaTaskResult> {
		if (!this.pool) {
			const workerFile = path.join(__dirname, `schema.worker${path.extname(__filename)}`);
			// Under ts-jest the worker is .ts source, which a worker thread can only load through ts-node.
			const source = path.extname(workerFile) === ".ts";
			this.pool = new Piscina({
				filename: workerFile,
				minThreads: 0,
				maxThreads: 2,
				idleTimeout: 30_000,
				resourceLimits: { maxOldGenerationSizeMb: 128 },
				execArgv: source ? ["-r", require.resolve("ts-node/register/transpile-only")] : undefined
			});
		}
		return this.pool;
	}
}
