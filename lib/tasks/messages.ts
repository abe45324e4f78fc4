import type { Scope } from "../../types/wire";
import { EXECUTION_PARAMS } from "../execution";
import type { TaskMessage } from "./task-queue";

/** Task types a caller may submit; `tool_validation` is queued by the registry only. */
export const SUBMITTED_TASK_TYPES = ["tool_execution", "tool_registration", "tool_discovery"] as const;

/** The type of a task decides the scope its submission needs, as the same request made directly would. */
export const SCOPE_OF_TASK_TYPE: Record<(typeof SUBMITTED_TASK_TYPES)[number], Scope> = {
	tool_execution: "tools:execute",
	tool_registration: "tools:write",
	tool_discovery: "tools:read"
};

/** The scope submitting a task of `type` needs; an unknown type is refused later, by validation. */
export const scopeOfTask = (type: unknown): Scope =>
	SCOPE_OF_TASK_TYPE[
		(typeof type === "string" ? type : "tool_execution") as keyof typeof SCOPE_OF_TASK_TYPE
	] ?? "tools:execute";

/** fastest-validator params of a submitted task message. */
export const SUBMIT_PARAMS = {
	task_id: { type: "string", pattern: /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/, optional: true },
	tenant_id: { type: "string", max: 128, optional: true },
	type: { type: "enum", values: SUBMITTED_TASK_TYPES, default: "tool_execution" },
	priority: { type: "number", integer: true, min: 0, max: 9, default: 0 },
	metadata: {
		type: "object",
		optional: true,
		default: {},
		props: {
			agent_id: { type: "string", min: 1, max: 128, optional: true },
			session_id: { type: "string", max: 128, optional: true },
			execution_id: { type: "string", min: 1, max: 128, optional: true },
			source: { type: "enum", values: ["agent_execution", "workflow", "api"], optional: true },
			global_task_id: { type: "string", max: 128, optional: true }
		}
	},
	payload: { type: "object" },
	callback_url: { type: "string", max: 2048, optional: true },
	// Server-owned fields of the message: accepted so a read can be resubmitted, never taken.
	created_at: { type: "any", optional: true },
	updated_at: { type: "any", optional: true },
	status: { type: "any", optional: true },
	result: { type: "any", optional: true },
	error: { type: "any", optional: true },
	attempts: { type: "any", optional: true }
} as const;

/** `payload` of a queued execution: the execution request plus the message's informative `tool_type`. */
export const EXECUTION_PAYLOAD_PARAMS = {
	$$strict: true,
	...EXECUTION_PARAMS,
	tool_type: { type: "string", max: 64, optional: true }
};

/** Why a callback URL cannot be used, or null: parsed as the outbound client will, http(s), no credentials. */
export function callbackUrlProblem(value: string): string | null {
	let url: URL;
	try {
		url = new URL(value);
	} catch {
		return "must be an absolute http(s) URL";
	}
	if (url.protocol !== "http:" && url.protocol !== "https:") return "must be an http(s) URL";
	if (url.username || url.password) return "must not carry credentials";
	return null;
}

/** A new pending task; the server's own fields are set here, never taken from a caller. */
export const newTask = (
	fields: Pick<
		TaskMessage,
		"task_id" | "tenant_id" | "type" | "priority" | "metadata" | "payload" | "callback_url"
	>
): TaskMessage => {
	const now = new Date().toISOString();
	// Not spread: once optimised, V8 gives every object spread and then extended a hidden class of its own.
	return Object.assign({}, fields, {
		created_at: now,
		updated_at: now,
		status: "pending" as const,
		attempts: 0
	});
};

/** Backoff before the attempt after `attempts` failed ones: doubling from `baseMs`, at most `maxMs`. */
export const retryDelay = (attempts: number, baseMs: number, maxMs: number): number =>
	Math.min(baseMs * 2 ** (attempts - 1), maxMs);
