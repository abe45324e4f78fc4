import type { Context, Service, ServiceSchema } from "moleculer";
import { systemClock, type Clock, type ClockTimer } from "../lib/clock";
import { config } from "../lib/config";
import { conflict, forbidden, invalid, lacksScope, notFound } from "../lib/errors";
import type { ExecutionRequest } from "../lib/execution";
import { newId } from "../lib/ids";
import { DEFAULT_OUTBOX_MAX } from "../lib/outbox/outbox";
import { secretBoxOf, secretsKeySettings, type SecretsKeySettings } from "../lib/secret-box";
import { taskQueueFor } from "../lib/tasks/backend";
import { deliverCallback } from "../lib/tasks/callbacks";
import {
	callbackUrlProblem,
	EXECUTION_PAYLOAD_PARAMS,
	newTask,
	scopeOfTask,
	SUBMIT_PARAMS
} from "../lib/tasks/messages";
import type { TaskMessage, TaskQueue } from "../lib/tasks/task-queue";
import type { CallerMeta, JsonObject } from "../types/wire";
import type { RedisLocals, RedisSettings } from "./redis.mixin";
import type { TenantScopeMethods } from "./tenant-scope.mixin";
import type { ToolAccessMethods } from "./tool-access.mixin";
import type { AuditLocals, AuditMethods } from "./audit.mixin";

/** Most `executor.work` broadcasts a node sends: one per this many ms while tasks are submitted. */
const WORK_SIGNAL_INTERVAL_MS = 50;

/** What this mixin sets; RedisMixin brings the rest of TaskSubmissionSettings. */
interface SubmissionOwnSettings {
	/** SECRETS_KEY and the earlier keys: queued registrations' secrets are sealed with them in Redis. */
	secrets: SecretsKeySettings;
	serviceToken?: string;
	/** OUTBOUND_ALLOW_HOSTS: hosts or CIDRs callbacks may reach although private. */
	outboundAllowHosts: string[];
	tasks: {
		/** Finished tasks stay readable this long. */
		retentionS: number;
	};
	/** Notification frames kept while the orchestrator is away; beyond it the oldest are dropped. */
	outboxMax: number;
	/** POST of a finished task to its `callback_url`: HMAC secret, tries, first backoff, timeout per try. */
	callbacks: { secret?: string; attempts: number; baseDelayMs: number; timeoutMs: number };
	/** Time of the task queue, the worker loop and callback backoff: the system clock unless a test passes one. */
	clock: Clock;
	$secureSettings: string[];
}

export type TaskSubmissionSettings = SubmissionOwnSettings & RedisSettings;

export interface TaskSubmissionMethods {
	settle(task: TaskMessage): void;
	ownTask(ctx: Context<unknown, CallerMeta>, taskId: string): Promise<TaskMessage>;
	signalWork(): void;
	checkTaskPayload(
		ctx: Context<unknown, CallerMeta>,
		task: Pick<TaskMessage, "type" | "payload" | "metadata">
	): Promise<JsonObject>;
}

export interface TaskSubmissionLocals extends RedisLocals {
	taskQueue: TaskQueue;
	lastWorkSignal: number;
	/** The `executor.work` broadcast due at the end of the current interval, if one is. */
	workSignalTimer?: ClockTimer;
	/** Aborted when the service stops: callbacks still retrying give up rather than outlive the node. */
	callbacksStopped: AbortController;
	/** Callback deliveries under way (attempts and backoff); the service waits for them when it stops. */
	callbacksInFlight: Set<Promise<void>>;
	checkExecutionPayload(payload: unknown): true | { field: string; message: string }[];
}

type SubmissionThis = Service<TaskSubmissionSettings> &
	TaskSubmissionMethods &
	TaskSubmissionLocals &
	TenantScopeMethods &
	ToolAccessMethods &
	AuditMethods &
	AuditLocals & { workers?: { wake(): void } };

/**
 * Accepting, reading and cancelling tasks of the tenant's queues (`submit`, `status`, `cancel`, under
 * `actionPrefix`). Everything that can be checked is checked before a task is queued. The executor
 * offers these actions to other nodes; every gateway has its own, so a submission is durable in the
 * queue as soon as it is answered, whether or not an executor node is up. An accepted task is recorded in the audit trail. Needs RedisMixin,
 * TenantScopeMixin, ToolAccessMixin and AuditMixin listed after it in the host service (their `created`
 * runs first).
 */
export function TaskSubmissionMixin(options: { actionPrefix?: string } = {}): Partial<ServiceSchema> {
	const prefix = options.actionPrefix ?? "";
	const mixin: Partial<
		ServiceSchema<SubmissionOwnSettings, TaskSubmissionMethods, TaskSubmissionLocals, SubmissionThis>
	> = {
		settings: {
			serviceToken: config().serviceToken,
			secrets: secretsKeySettings(config()),
			outboundAllowHosts: config().outboundAllowHosts,
			tasks: { retentionS: 24 * 3600 },
			outboxMax: DEFAULT_OUTBOX_MAX,
			callbacks: {
				secret: config().callbackSecret,
				attempts: 4,
				baseDelayMs: 1000,
				timeoutMs: 10000
			},
			clock: systemClock,
			// The clock is this process's own: not a setting to publish to other nodes.
			$secureSettings: ["serviceToken", "callbacks", "secrets", "clock"]
		},

		actions: {
			[`${prefix}submit`]: {
				params: SUBMIT_PARAMS,
				async handler(this: SubmissionThis, ctx: Context<TaskMessage, CallerMeta>) {
					const tenantId = this.tenantOf(ctx);
					const { task_id, tenant_id, type, priority, callback_url } = ctx.params;
					const scope = scopeOfTask(type);
					// Callers from other nodes are trusted; a gateway caller brings the scopes of its credential.
					if (ctx.meta.scopes && !ctx.meta.scopes.includes(scope)) throw lacksScope(scope);
					if (tenant_id !== undefined && tenant_id !== tenantId)
						throw forbidden("tenant_id must be the caller's tenant");
					const metadata = { ...ctx.params.metadata };
					const callerAgent = this.agentOf(ctx);
					if (callerAgent && metadata.agent_id && metadata.agent_id !== callerAgent)
						throw forbidden("metadata.agent_id must be the calling agent");
					metadata.agent_id = callerAgent ?? metadata.agent_id ?? null;
					const callbackProblem = callback_url === undefined ? null : callbackUrlProblem(callback_url);
					if (callbackProblem)
						throw invalid("callback_url is invalid", [{ field: "callback_url", message: callbackProblem }]);
					if (task_id) {
						const existing = await this.taskQueue.get(task_id);
						if (existing && existing.tenant_id !== tenantId) throw conflict("task_id is already in use");
						if (existing) return existing;
					}
					const payload = await this.checkTaskPayload(ctx, { type, payload: ctx.params.payload, metadata });
					const message = newTask({
						task_id: task_id ?? newId(),
						tenant_id: tenantId,
						type,
						priority,
						metadata,
						payload,
						...(callback_url ? { callback_url } : {})
					});
					const audit = this.auditDraft(ctx, tenantId, "task.submit", `task:${message.task_id}`, "accepted", {
						details: { type, ...(payload.tool_id ? { tool_id: payload.tool_id } : {}) }
					});
					// Appended with the task by the queue where it can (one atomic step), else here.
					const inQueue = this.taskQueue.appendsAudit;
					const { task, created } = await this.taskQueue.submit(message, inQueue ? audit : undefined);
					if (!created) return task;
					if (!inQueue) await this.recordAudit(audit);
					// No "queued" announcement: the submitter has the 202; updates start with "processing".
					this.signalWork();
					return { task_id: task.task_id, status: task.status };
				}
			},

			[`${prefix}status`]: {
				params: { task_id: { type: "string", max: 64 } },
				handler(this: SubmissionThis, ctx: Context<{ task_id: string }, CallerMeta>) {
					return this.ownTask(ctx, ctx.params.task_id);
				}
			},

			[`${prefix}cancel`]: {
				params: { task_id: { type: "string", max: 64 } },
				async handler(this: SubmissionThis, ctx: Context<{ task_id: string }, CallerMeta>) {
					await this.ownTask(ctx, ctx.params.task_id);
					const answer = await this.taskQueue.cancel(ctx.params.task_id);
					if (!answer) throw notFound("Task", ctx.params.task_id);
					const { task, cancelled } = answer;
					// Only the call that cancelled it answers 200: cancelling again is a conflict like any non-pending task.
					if (!cancelled) throw conflict(`The task is ${task.status}`, { status: task.status });
					this.settle(task);
					return task;
				}
			}
		},

		methods: {
			/**
			 * The payload to queue, once checked as far as it can be now: an execution names a tool the
			 * caller may run with parameters matching its schema; a registration is a valid definition.
			 */
			async checkTaskPayload(
				this: SubmissionThis,
				ctx: Context<unknown, CallerMeta>,
				{ type, payload, metadata }: Pick<TaskMessage, "type" | "payload" | "metadata">
			) {
				if (type === "tool_execution") {
					const request = payload as ExecutionRequest;
					const shape = this.checkExecutionPayload(request);
					if (shape !== true)
						throw invalid(
							"payload is invalid",
							shape.map(problem => ({
								field: problem.field ? `payload.${problem.field}` : "payload",
								message: problem.message
							}))
						);
					const tool = await this.resolveTool(ctx, request, metadata.agent_id as string | null);
					await this.checkParameters(tool, request.parameters ?? {});
					metadata.execution_id ??= newId();
					return {
						tool_id: tool.id,
						tool_name: tool.name,
						tool_type: tool.type,
						parameters: request.parameters ?? {},
						timeout_ms: Math.min(request.timeout_ms ?? tool.timeout_ms, tool.timeout_ms),
						// Checked again when the task runs: the definition may change while it waits.
						...(request.expected_hash ? { expected_hash: request.expected_hash } : {})
					};
				}
				if (type === "tool_registration") {
					const report = await ctx.call<{ valid: boolean; errors: unknown }, JsonObject>(
						"validator.validate",
						payload
					);
					if (!report.valid) throw invalid("Tool definition is invalid", report.errors);
				}
				return payload;
			},

			/** POSTs a finished task to its callback URL, in the background. */
			settle(this: SubmissionThis, task: TaskMessage) {
				if (!task.callback_url) return;
				const { secret, ...options } = this.settings.callbacks;
				const delivery = deliverCallback(task.callback_url, task, {
					...options,
					// Unsigned only when no secret exists at all (a development setup without SERVICE_TOKEN).
					secret: secret ?? this.settings.serviceToken,
					allowHosts: this.settings.outboundAllowHosts,
					signal: this.callbacksStopped.signal,
					clock: this.settings.clock
				})
					.then(
						delivered => {
							if (!delivered) this.logger.warn(`Callback of task ${task.task_id} was not delivered`);
						},
						(err: unknown) => this.logger.warn(`Callback of task ${task.task_id} failed`, err)
					)
					.finally(() => this.callbacksInFlight.delete(delivery));
				this.callbacksInFlight.add(delivery);
			},

			async ownTask(this: SubmissionThis, ctx: Context<unknown, CallerMeta>, taskId: string) {
				const task = await this.taskQueue.get(taskId);
				if (!task || task.tenant_id !== this.tenantOf(ctx)) throw notFound("Task", taskId);
				return task;
			},

			/**
			 * Idle executors look now instead of at their next poll (up to `pollIntervalMs` later): this
			 * node's at once, other nodes' through an `executor.work` broadcast, at most one per
			 * WORK_SIGNAL_INTERVAL_MS. A submission inside that interval gets the one at its end, so no task
			 * waits for a poll while its workers sleep.
			 */
			signalWork(this: SubmissionThis) {
				this.workers?.wake();
				if (this.workSignalTimer) return;
				const { clock } = this.settings;
				const broadcast = () => {
					this.lastWorkSignal = clock.now();
					// Only a hint (idle workers poll anyway): a transporter that is down must not fail the submission.
					void Promise.resolve(this.broker.broadcast("executor.work", {}, { groups: ["executor"] })).catch(
						() => undefined
					);
				};
				const wait = this.lastWorkSignal + WORK_SIGNAL_INTERVAL_MS - clock.now();
				if (wait <= 0) return broadcast();
				this.workSignalTimer = clock.setTimeout(() => {
					this.workSignalTimer = undefined;
					broadcast();
				}, wait);
			}
		},

		created(this: SubmissionThis) {
			const { settings } = this;
			this.taskQueue = taskQueueFor(this.broker, {
				redis: this.redis,
				redisPrefix: settings.redisPrefix,
				outboxMax: settings.outboxMax,
				retentionS: settings.tasks.retentionS,
				clock: settings.clock,
				// Queued registrations rest in Redis for up to a day: their secrets are sealed like a stored tool's.
				secretBox: this.redis
					? secretBoxOf(settings.secrets, message => this.logger.warn(message))
					: undefined,
				auditLog: this.auditLog,
				onUnreadable: (taskId, err) =>
					this.logger.error(
						`Claimed task ${taskId} cannot be read; it is redelivered when its lease ends, then dead-lettered`,
						err
					)
			});
			this.lastWorkSignal = 0;
			this.callbacksStopped = new AbortController();
			this.callbacksInFlight = new Set();
			this.checkExecutionPayload = this.broker.validator!.compile(
				EXECUTION_PAYLOAD_PARAMS
			) as TaskSubmissionLocals["checkExecutionPayload"];
		},

		async stopped(this: SubmissionThis) {
			if (this.workSignalTimer) this.settings.clock.clear(this.workSignalTimer);
			this.callbacksStopped.abort();
			await Promise.all(this.callbacksInFlight);
		}
	};
	return mixin as Partial<ServiceSchema>;
}
