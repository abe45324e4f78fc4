import { randomUUID } from "crypto";
import type Redis from "ioredis";
import type { ServiceBroker } from "moleculer";
import { DEFAULT_OUTBOX_MAX } from "../../lib/outbox/outbox";
import { outboxFor } from "../../lib/tasks/backend";
import { taskFrame, type TaskUpdate } from "../../lib/tasks/task-events";
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

/**
 * Records a task update as the task queue does, in the outbox of the node's `notifier` (or `api`)
 * service: what the notifier drains and the gateways publish to UI clients.
 */
export async function recordUpdate(node: { broker: ServiceBroker }, update: TaskUpdate): Promise<void> {
	const service = (node.broker.getLocalService("notifier") ??
		node.broker.getLocalService("api")) as unknown as {
		redis: Redis | null;
		settings: { redisPrefix: string; outboxMax?: number };
	};
	const outbox = outboxFor(node.broker, {
		redis: service.redis,
		redisPrefix: service.settings.redisPrefix,
		outboxMax: service.settings.outboxMax ?? DEFAULT_OUTBOX_MAX
	});
	await outbox.push(JSON.stringify(taskFrame(update)));
}
