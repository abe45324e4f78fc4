import type { FailureType } from "../types/wire";
import { MAX_TIMEOUT_MS } from "./definition";
import type { JsonObject, ValidationProblem } from "../types/wire";

/** Body of a synchronous execution, and `payload` of a queued one. */
export interface ExecutionRequest {
	tool_id?: string;
	tool_name?: string;
	parameters?: JsonObject;
	timeout_ms?: number;
	execution_id?: string;
	/** The `definition_hash` the caller approved: another definition does not run. */
	expected_hash?: string;
}

/** The execution result envelope. */
export interface ExecutionResult {
	execution_id: string;
	tool_id: string;
	tool_name: string;
	status: "completed" | "failed";
	result?: JsonObject;
	error?: { type: FailureType; message: string };
	execution_time_ms: number;
	/** How a completed result misses the tool's `output_schema` (`output_validation: warn`). */
	output_problems?: ValidationProblem[];
}

/** fastest-validator params of an execution request. */
export const EXECUTION_PARAMS = {
	tool_id: { type: "string", max: 64, optional: true },
	tool_name: { type: "string", max: 64, optional: true },
	parameters: { type: "object", optional: true, default: {} },
	timeout_ms: { type: "number", integer: true, min: 1, max: MAX_TIMEOUT_MS, optional: true },
	execution_id: { type: "string", min: 1, max: 128, optional: true },
	expected_hash: { type: "string", max: 100, optional: true }
} as const;
