import type { FailureType, JsonObject } from "../types/wire";

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
 * An expected failure of a tool, reported in the execution result as `error.type`; anything else
 * a tool throws is reported as `tool_error`.
 */
export class ToolFailure extends Error {
	constructor(
		readonly type: FailureType,
		message: string
	) {
		super(message);
		this.name = "ToolFailure";
	}
}
