import type { JsonObject, ValidationProblem } from "../types/wire";

/** What a tool sees of the call it serves. */
export interface ToolContext {
	tenant_id: string;
	agent_id: string | null;
	execution_id: string;
	/** Aborted when the execution's `timeout_ms` elapses; tools pass it to whatever they wait on. */
	signal: AbortSignal;
	timeout_ms: number;
	/** Calls a Moleculer action in the cluster (used by `moleculer_action`), identity in meta. */
	call(action: string, params: JsonObject, meta: JsonObject): Promise<unknown>;
	/** Operator settings a tool may read (`ORCHESTRATOR_URL`, `SERVICE_TOKEN`, `OUTBOUND_ALLOW_HOSTS`). */
	env: ToolEnvironment;
}

export interface ToolEnvironment {
	orchestrator_url?: string;
	service_token?: string;
	outbound_allow_hosts: string[];
}

/**
 * Failure classes of the execution result envelope. A tool throws ToolFailure for expected
 * failures; anything else it throws is reported as `tool_error`.
 */
export type FailureType = "timeout" | "tool_error" | "upstream_error" | "output_invalid";

export class ToolFailure extends Error {
	constructor(
		readonly type: FailureType,
		message: string
	) {
		super(message);
		this.name = "ToolFailure";
	}
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
	/** Checks on `config` a schema cannot express; problems name fields as `config.<path>`. */
	checkConfig?(config: JsonObject): ValidationProblem[];
	/** Runs the tool; resolves the result object of the execution envelope. */
	execute(params: JsonObject, config: JsonObject, context: ToolContext): Promise<JsonObject>;
	/** Prepares costly resources (worker pools) when the executor starts, in the background. */
	start?(): Promise<void>;
	/** Releases resources (worker pools, connection pools) when the executor stops. */
	close?(): Promise<void>;
}
