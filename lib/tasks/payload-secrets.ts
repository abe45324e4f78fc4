import type { JsonObject } from "../../types/wire";
import type { TaskMessage } from "./task-queue";

/**
 * A registration task carries a tool definition, whose `config` may hold secrets (header values,
 * tokens). The task with `map` applied to that config; any other task as it is.
 */
export function mapPayloadConfig<T extends Pick<TaskMessage, "type" | "payload">>(
	task: T,
	map: (config: JsonObject) => JsonObject
): T {
	const config = task.payload.config;
	if (task.type !== "tool_registration" || !config || typeof config !== "object" || Array.isArray(config))
		return task;
	return { ...task, payload: { ...task.payload, config: map(config as JsonObject) } };
}
