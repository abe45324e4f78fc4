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

/** A node's feed of the task frames every node records; frames reach its listener only while it listens. */
export interface FrameFeed {
	/**
	 * Starts or stops the feed; resolves once the latest change holds. Every recorded frame is
	 * published to each listening node, so a node listens only while it has somewhere to send them.
	 */
	listen(on: boolean): Promise<void>;
	close(): Promise<void>;
}

/**
 * Live delivery of recorded task frames for UI clients, at most once (the outbox keeps the copy the
 * orchestrator gets): from the memory outbox, or from the frames channel of Redis.
 */
export function frameFeed(
	broker: object,
	options: TaskBackendOptions,
	listener: (frame: string) => void
): FrameFeed {
	const outbox = outboxFor(broker, options);
	if (outbox instanceof MemoryOutbox) {
		let unsubscribe: (() => void) | null = null;
		return {
			async listen(on) {
				if (on && !unsubscribe) unsubscribe = outbox.subscribe(listener);
				else if (!on && unsubscribe) {
					unsubscribe();
					unsubscribe = null;
				}
			},
			async close() {
				unsubscribe?.();
			}
		};
	}
	let listening = false;
	let closed = false;
	let latest: Promise<unknown> = Promise.resolve();
	const channel = framesChannel(options.redisPrefix);
	const subscriber = options.redis!.duplicate();
	const apply = () => (latest = listening ? subscriber.subscribe(channel) : subscriber.unsubscribe(channel));
	// Reported by the service's own connection.
	subscriber.on("error", () => undefined);
	subscriber.on("message", (_channel: string, frame: string) => listener(frame));
	// Once Redis is back the latest wish is applied again, whatever failed while it was away (ioredis
	// itself restores only the subscriptions it had).
	subscriber.on("ready", () => void apply().catch(() => undefined));
	return {
		listen(on) {
			if (on !== listening) {
				listening = on;
				void apply();
			}
			// Closing ends the subscription with the connection: a command it cut short is no failure.
			return latest.then(
				() => undefined,
				err => {
					if (!closed) throw err;
				}
			);
		},
		async close() {
			closed = true;
			listening = false;
			subscriber.disconnect();
		}
	};
}
