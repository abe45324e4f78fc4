import type { JsonObject } from "../../types/wire";
import type { AuditDraft } from "../audit/audit-log";

export const TASK_STATUSES = ["pending", "processing", "completed", "failed", "cancelled"] as const;
export type TaskStatus = (typeof TASK_STATUSES)[number];
export const TASK_TYPES = [
	"tool_execution",
	"tool_registration",
	"tool_discovery",
	"tool_validation"
] as const;
export type TaskType = (typeof TASK_TYPES)[number];

/** The standard queue message, as stored and as `GET` returns it. */
export interface TaskMessage {
	task_id: string;
	tenant_id: string;
	created_at: string;
	updated_at: string;
	status: TaskStatus;
	type: TaskType;
	priority: number;
	metadata: JsonObject;
	payload: JsonObject;
	callback_url?: string;
	result?: JsonObject;
	error?: JsonObject;
	/** Deliveries so far (1 on the first run). */
	attempts: number;
}

export interface TaskOutcome {
	status: "completed" | "failed" | "cancelled";
	result?: JsonObject;
	error?: JsonObject;
}

/** A claimed task and the token that proves the claim; every later write must present it. */
export interface Lease {
	task: TaskMessage;
	token: string;
}

export interface QueueDepth {
	queue: string;
	tenant_id: string;
	pending: number;
	oldest_age_ms: number;
}

export interface ReapResult {
	/** Tasks whose worker vanished, put back for another worker. */
	redelivered: number;
	/** Tasks that ran out of attempts: now `failed`, with the reason in `error`. */
	dead_lettered: TaskMessage[];
	/** Retries whose backoff elapsed, back in their queue. */
	promoted: number;
}

/** An audit entry handed to a queue that does not append them (`appendsAudit`): a caller's mistake. */
export const auditNotAppended = (): Error =>
	new Error("This task queue does not append audit entries (appendsAudit is false)");

/** Queue name of a task: one set per tenant. */
export const queueOf = (type: TaskType, tenantId: string): string =>
	`${type === "tool_discovery" ? "tool_registry_tasks" : type}:${tenantId}`;

/**
 * Per-tenant priority queues with fair service across tenants and leased, at-least-once delivery.
 *
 * - `claim` serves tenant queues round-robin (each non-empty queue gets one task per turn), and
 *   within a queue the highest priority first, oldest first.
 * - A claim is a lease: the worker extends it while running and must present its token to finish;
 *   a lease that expires (worker killed) puts the task back, so it runs again elsewhere.
 * - Every status change is a compare-and-set, so a redelivered task never completes twice.
 * - Every status change after submission records its notification frame (the orchestrator's WebSocket frame) in the
 *   outbox in the same atomic step: a task that ends `completed` or `failed` is always announced.
 * - The secrets of a registration task's definition (its `config`) reach only the worker: `claim` hands
 *   them over; every other read (`get`, `finish`, `cancel`, `reap`) shows them masked. A durable queue
 *   keeps them sealed at rest.
 */
export interface TaskQueue {
	/**
	 * Whether `submit` and `finish` append the audit entries they are given in the same atomic step as
	 * their change (memory; a single Redis). On a Redis Cluster a task's keys and its tenant's audit
	 * stream sit in different slots: callers append the entry themselves and pass none.
	 */
	readonly appendsAudit: boolean;
	/**
	 * Stores and enqueues a new task, and appends `audit` with it (see `appendsAudit`); a known
	 * `task_id` resolves the stored task, `created: false`, and appends nothing. The queue may keep the
	 * objects `task` refers to (its payload, metadata): the caller leaves them unchanged.
	 */
	submit(task: TaskMessage, audit?: AuditDraft): Promise<{ task: TaskMessage; created: boolean }>;
	get(taskId: string): Promise<TaskMessage | null>;
	/**
	 * The next tasks, at most `max`, fairly across tenant queues (on one scheduling shard in the order
	 * single claims would take them); none when all queues are empty. Records each run's `task_status_update` frame
	 * ("attempt N") with its claim: every run, which may have side effects, is announced before it starts.
	 */
	claim(leaseMs: number, max: number): Promise<Lease[]>;
	/** Renews a lease; false when it was lost (expired and redelivered, or the task ended). */
	extend(lease: Lease, leaseMs: number): Promise<boolean>;
	/**
	 * Ends a leased task and records its `task_completed`/`task_failed` frame with it; null when the
	 * lease was lost, so another delivery owns the outcome. `audit`, the run's own entry, is appended in
	 * the same step whether or not the lease held: the run happened (see `appendsAudit`). The task
	 * answered is the final record, to read, not to change.
	 */
	finish(
		lease: Lease,
		outcome: TaskOutcome,
		executionTimeMs?: number,
		audit?: AuditDraft
	): Promise<TaskMessage | null>;
	/**
	 * Puts a leased task back after `delayMs` (retry with backoff) and records a "retrying" update; false
	 * when the lease was lost.
	 */
	retry(lease: Lease, delayMs: number, error: JsonObject): Promise<boolean>;
	/** Cancels a pending task (`cancelled: true`, update recorded); otherwise resolves it unchanged, or null when unknown. */
	cancel(taskId: string): Promise<{ task: TaskMessage; cancelled: boolean } | null>;
	/** Redelivers expired leases, dead-letters tasks past `maxAttempts` (with their frame), promotes due retries. */
	reap(maxAttempts: number): Promise<ReapResult>;
	depths(): Promise<QueueDepth[]>;
}

/**
 * Sort key inside a tenant queue: priority 9 first, then submission order. Fits a double exactly
 * (priority slot × 2^40 + sequence < 2^53).
 */
export const queueScore = (priority: number, sequence: number): number => (9 - priority) * 2 ** 40 + sequence;
