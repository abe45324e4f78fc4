import type { AddressGuard } from "../lib/outbound/address-guard";
import type { JsonObject, ToolHealth, ValidationProblem } from "../types/wire";
import type { ToolContext } from "../lib/tool-contract";

// The tool contract lives in lib/ (the executor's helpers use it too); tools import it from here.
export { ToolFailure, type ToolContext, type ToolEnvironment } from "../lib/tool-contract";
export type { FailureType } from "../types/wire";

export interface ProbeResult {
	/** What will never work (a malformed or refused address): the tool is invalid. */
	problems: ValidationProblem[];
	/** Whether the upstream answered; an unreachable one may answer later. */
	health: Pick<ToolHealth, "state" | "error">;
}

export interface ProbeOptions {
	/** OUTBOUND_ALLOW_HOSTS of the node running the probe. */
	allowHosts: readonly string[];
	timeoutMs: number;
}

/** One tool type: its schemas and how it runs. Adding a type = one file + one line in index.ts. */
export interface BaseTool {
	readonly type: string;
	/** JSON Schema of `parameters` when a definition gives none. */
	readonly parameters: JsonObject;
	/** JSON Schema (checked with ajv) of the type's `config`. */
	readonly configSchema: JsonObject;
	/**
	 * The tool depends on something outside this process, so a per-tool circuit breaker and
	 * bulkhead guard it. Local tools (calculator, datetime) fail only through their input.
	 */
	readonly callsOut?: boolean;
	/**
	 * Checks on `config` a schema cannot express; problems name fields as `config.<path>`. `addresses`
	 * is the validating node's outbound policy, for addresses the config names literally.
	 */
	checkConfig?(config: JsonObject, addresses: AddressGuard): ValidationProblem[];
	/**
	 * Functional check of a new or changed tool before it may run (its API answers): the tool stays
	 * `pending_validation` until a queued probe resolves; problems name fields as `config.<path>`.
	 * Types without it are active as soon as their definition is valid.
	 */
	probe?(config: JsonObject, options: ProbeOptions): Promise<ProbeResult>;
	/** Runs the tool; resolves the result object of the execution envelope. */
	execute(params: JsonObject, config: JsonObject, context: ToolContext): Promise<JsonObject>;
	/** Prepares costly resources (worker pools, ICU data) as the executor starts, so no task pays for them. */
	start?(): Promise<void>;
	/** Releases resources (worker pools, connection pools) when the executor stops. */
	close?(): Promise<void>;
}
