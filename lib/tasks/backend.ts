import type Redis from "ioredis";
import { MemoryTaskQueue } from "./memory-task-queue";
import { RedisTaskQueue } from "./redis-task-queue";
import type { TaskQueue } from "./task-queue";

export interface TaskBackendOptions {
	/** The service's Redis connection, or null for the embedded default. */
	redis: Redis | null;
	redisPrefix: string;
	/** Finished tasks stay readable this long. */
	retentionS: number;
}

/** Memory queues by broker: the services of one process (gateway, executor) must share one. */
const memoryQueues = new WeakMap<object, MemoryTaskQueue>();

/**
 * The task queue a service of `broker` uses: on Redis a client of the shared durable queue, in
 * memory the one queue of this broker.
 */
export function taskQueueFor(broker: object, options: TaskBackendOptions): TaskQueue {
	if (options.redis) return new RedisTaskQueue(options.redis, options.redisPrefix, options.retentionS);
	let queue = memoryQueues.get(broker);
	if (!queue) memoryQueues.set(broker, (queue = new MemoryTaskQueue(options.retentionS * 1000)));
	return queue;
}
