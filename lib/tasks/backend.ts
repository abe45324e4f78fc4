import type { AuditLog } from "../audit/audit-log";
import { MemoryAuditLog } from "../audit/memory-audit-log";
import { RedisAuditLog } from "../audit/redis-audit-log";
import type { Clock } from "../clock";
import { MemoryOutbox } from "../outbox/memory-outbox";
import type { Outbox } from "../outbox/outbox";
import { framesChannel, RedisOutbox } from "../outbox/redis-outbox";
import { MemoryTaskQueue } from "./memory-task-queue";
import type { SecretBox } from "../secret-box";
import { RedisTaskQueue } from "./redis-task-queue";
import type { RedisClient } from "../redis";
import type { TaskQueue } from "./task-queue";

export interface TaskBackendOptions {
	/** The service's Redis connection, or null for the embedded default. */
	redis: RedisClient | null;
	redisPrefix: string;
	/** Frames the outbox keeps; beyond it the oldest are dropped. */
	outboxMax: number;
}

/** Memory backends by broker: the services of one process (gateway, executor, notifier) share them. */
const memoryOutboxes = new WeakMap<object, MemoryOutbox>();
const memoryQueues = new WeakMap<object, MemoryTaskQueue>();

/** The notification outbox a service of `broker` uses: the shared Redis list, or this broker's memory one. */
export function outboxFor(broker: object, options: TaskBackendOptions): Outbox {
	if (options.redis) return new RedisOutbox(options.redis, options.redisPrefix, options.outboxMax);
	let outbox = memoryOutboxes.get(broker);
	if (!outbox) memoryOutboxes.set(broker, (outbox = new MemoryOutbox(options.outboxMax)));
	return outbox;
}

/**
 * The task queue a service of `broker` uses: on Redis a client of the shared durable queue, in memory
 * the one queue of this broker. Either records each status change and its notification together.
 */
export function taskQueueFor(
	broker: object,
	options: TaskBackendOptions & {
		retentionS: number;
		clock?: Clock;
		/** Seals the secrets of queued registrations in Redis. */
		secretBox?: SecretBox;
		/** Told of a claimed task whose message or secrets cannot be read (Redis only). */
		onUnreadable?: (taskId: string, err: unknown) => void;
		/** The deployment's audit trail, which the queue appends entries to with its changes (`appendsAudit`). */
		auditLog?: AuditLog;
	}
): TaskQueue {
	const outbox = outboxFor(broker, options);
	if (outbox instanceof RedisOutbox)
		return new RedisTaskQueue(
			options.redis!,
			options.redisPrefix,
			outbox,
			options.retentionS,
			options.clock,
			options.secretBox,
			options.onUnreadable,
			options.auditLog instanceof RedisAuditLog ? options.auditLog : undefined
		);
	let queue = memoryQueues.get(broker);
	if (!queue)
		memoryQueues.set(
			broker,
			(queue = new MemoryTaskQueue(
				outbox as MemoryOutbox,
				options.retentionS * 1000,
				options.clock,
				options.auditLog instanceof MemoryAuditLog ? options.auditLog : undefined
			))
		);
	return queue;
}

/**
 * Calls `listener` with every frame recorded from now on, by any node: live delivery for UI clients
 * (at most once; the outbox keeps the copy the orchestrator gets). Resolves the function that stops it.
 */
export async function subscribeFrames(
	broker: object,
	options: TaskBackendOptions,
	listener: (frame: string) => void
): Promise<() => Promise<void>> {
	const outbox = outboxFor(broker, options);
	if (outbox instanceof MemoryOutbox) {
		const unsubscribe = outbox.subscribe(listener);
		return async () => void unsubscribe();
	}
	const subscriber = options.redis!.duplicate();
	// Reported by the service's own connection; a subscriber only resubscribes when Redis is back.
	subscriber.on("error", () => undefined);
	subscriber.on("message", (_channel: string, frame: string) => listener(frame));
	await subscriber.subscribe(framesChannel(options.redisPrefix));
	return async () => void (await subscriber.quit().catch(() => undefined));
}
