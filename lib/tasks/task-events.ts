import type { JsonObject } from "../../types/wire";
import type { TaskMessage } from "./task-queue";

export type TaskEventName = "task_status_update" | "task_completed" | "task_failed";

/**
 * Payload of the Moleculer event `task.updated`, raised by the executor on every status change of a
 * task: once per change (emitted to one notifier node) and broadcast to every gateway for UI clients.
 */
export interface TaskUpdate {
	event: TaskEventName;
	task: TaskMessage;
	/** Set on `task_completed`. */
	execution_time_ms?: number;
	/** Human-readable detail of a status update (e.g. "retrying in 2000 ms"). */
	message?: string;
}

/** The orchestrator's WebSocket frame for one task update. */
export function taskFrame(update: TaskUpdate, timestamp = new Date().toISOString()): Record<string, unknown> {
	const { task } = update;
	const toolId = (task.payload.tool_id as string | undefined) ?? null;
	return {
		event: update.event,
		service: "tool-registry",
		task_id: task.task_id,
		global_task_id: (task.metadata.global_task_id as string | undefined) ?? null,
		tenant_id: task.tenant_id,
		timestamp,
		data: frameData(update, toolId)
	};
}

/** The event-specific `data` of a frame. */
function frameData(
	{ event, task, execution_time_ms, message }: TaskUpdate,
	toolId: string | null
): JsonObject {
	switch (event) {
		case "task_completed":
			return {
				tool_id: toolId,
				execution_id: (task.metadata.execution_id as string | undefined) ?? null,
				result: task.result ?? {},
				execution_time_ms: execution_time_ms ?? null
			};
		case "task_failed":
			return {
				error: (task.error?.message as string | undefined) ?? "task failed",
				error_type: (task.error?.type as string | undefined) ?? "tool_error",
				tool_id: toolId
			};
		default:
			return { status: task.status, details: { tool_id: toolId, message: message ?? task.status } };
	}
}
