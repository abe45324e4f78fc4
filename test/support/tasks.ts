import { randomUUID } from "crypto";
import type { TaskMessage } from "../../lib/tasks/task-queue";

/** A new pending task message for queue-level tests. */
export const pendingTask = (tenant: string, extra: Partial<TaskMessage> = {}): TaskMessage => ({
	task_id: randomUUID(),
	tenant_id: tenant,
	created_at: new Date().toISOString(),
	updated_at: new Date().toISOString(),
	status: "pending",
	type: "tool_execution",
	priority: 0,
	metadata: {},
	payload: { tool_name: "calculator", parameters: { expression: "1+1" } },
	attempts: 0,
	...extra
});
