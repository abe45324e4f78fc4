import type { Context, Service, ServiceSchema } from "moleculer";
import type { AuditDraft } from "../lib/audit/audit-log";
import type { AuditMethods } from "./audit.mixin";
import { config } from "../lib/config";
import { isClientError, isUnavailable } from "../lib/errors";
import { METRICS } from "../lib/metrics/names";
import type { ExecutionRequest, ExecutionResult } from "../lib/execution";
import { newId } from "../lib/ids";
import { newTask, retryDelay } from "../lib/tasks/messages";
import type { Lease, TaskMessage, TaskOutcome } from "../lib/tasks/task-queue";
import { TaskWorkers, type TaskWorkerOptions } from "../lib/tasks/task-workers";
import { toolFor } from "../tools";
import type { CallerMeta, JsonObject, StoredTool, ValidationReport } from "../types/wire";
import type {
	TaskSubmissionLocals,
	TaskSubmissionMethods,
	TaskSubmissionSettings
} from "./task-submission.mixin";
import type { TenantScopeMethods } from "./tenant-scope.mixin";

/** What this mixin sets under `tasks`; TaskSubmissionMixin sets the rest. */
interface WorkerOwnSettings {
	tasks: TaskWorkerOptions & {
		/** Retries of a task whose tool failed with `upstream_error` or `timeout`. */
		maxRetries: number;
		retryBaseDelayMs: number;
		retryMaxDelayMs: number;
	};
}

export type TaskWorkerSettings = TaskSubmissionSettings & {
	tasks: TaskSubmissionSettings["tasks"] & WorkerOwnSettings["tasks"];
};

/** How one run of a task ended; failures are marked retryable when trying again may help. */
interface TaskRun {
	outcome: TaskOutcome;
	retryable: boolean;
	execution_time_ms?: number;
	/** The run's audit entry, not yet appended (an execution's, when sampled). */
	audit?: AuditDraft;
}

interface TaskWorkerMethods {
	contextFor(task: TaskMessage): Context<unknown, CallerMeta>;
	handleTask(lease: Lease): Promise<void>;
	runTask(task: TaskMessage): Promise<TaskRun>;
	validateTool(task: TaskMessage): Promise<ValidationReport>;
	sampleMetrics(): Promise<void>;
}

interface TaskWorkerLocals {
	workers: TaskWorkers;
	sampledQueues: Set<string>;
}

type WorkersThis = Service<TaskWorkerSettings> &
	TaskWorkerMethods &
	TaskWorkerLocals &
	TaskSubmissionMethods &
	TaskSubmissionLocals &
	TenantScopeMethods &
	AuditMethods & {
		execute(
			ctx: Context<unknown, CallerMeta>,
			request: ExecutionRequest,
			audit?: (draft: AuditDraft) => Promise<void>
		): Promise<ExecutionResult>;
	};

/**
 * The worker loop of an executor node: claims tasks fairly across tenant queues, runs them (with
 * retries and backoff), records their outcome and POSTs callbacks; also queues tool probes and samples
 * queue gauges. Needs TaskSubmissionMixin, AuditMixin and an `execute` method in the host service.
 */
export function TaskWorkersMixin(): Partial<ServiceSchema> {
	const mixin: Partial<ServiceSchema<WorkerOwnSettings, TaskWorkerMethods, TaskWorkerLocals, WorkersThis>> = {
		settings: {
			tasks: {
				// Most tools wait on an upstream, so a node keeps many in flight; the calculator pool bounds its own.
				concurrency: config().taskConcurrency,
				leaseMs: 5000,
				reapIntervalMs: 1000,
				maxDeliveries: 5,
				pollIntervalMs: 500,
				maxRetries: 3,
				retryBaseDelayMs: 1000,
				retryMaxDelayMs: 30000
			}
		},

		actions: {
			/** Queues the functional validation of a tool (a probe of its API). Used by the registry. */
			queueValidation: {
				visibility: "public",
				params: { tool_id: { type: "string", max: 64 }, version: { type: "number", integer: true } },
				async handler(this: WorkersThis, ctx: Context<{ tool_id: string; version: number }, CallerMeta>) {
					const { task } = await this.taskQueue.submit(
						newTask({
							task_id: newId(),
							tenant_id: this.tenantOf(ctx),
							type: "tool_validation",
							priority: 5,
							metadata: { source: "api" },
							payload: { tool_id: ctx.params.tool_id, version: ctx.params.version }
						})
					);
					this.signalWork();
					return { task_id: task.task_id };
				}
			},

			/** Queue depths per tenant, for operators and metrics. */
			queues: {
				visibility: "public",
				handler(this: WorkersThis) {
					return this.taskQueue.depths();
				}
			}
		},

		events: {
			// Another node queued work: idle workers here look now instead of at their next poll.
			"executor.work"(this: WorkersThis) {
				this.workers.wake();
			}
		},

		methods: {
			/** A context acting for the task's tenant and agent, as the submitting caller did. */
			contextFor(this: WorkersThis, task: TaskMessage): Context<unknown, CallerMeta> {
				// No endpoint: the context only carries identity into the calls the task makes.
				return this.broker.ContextFactory.create(
					this.broker,
					null as never,
					{},
					{
						meta: { tenant_id: task.tenant_id, agent_id: (task.metadata.agent_id as string | null) ?? null }
					}
				) as Context<unknown, CallerMeta>;
			},

			async handleTask(this: WorkersThis, lease: Lease) {
				// The claim recorded the run's "attempt N" frame: it is announced before the tool runs.
				const { outcome, retryable, execution_time_ms, audit } = await this.runTask(lease.task);
				const { maxRetries, retryBaseDelayMs, retryMaxDelayMs } = this.settings.tasks;
				const retrying = outcome.status === "failed" && retryable && lease.task.attempts <= maxRetries;
				// The run's entry goes with the outcome where the queue can append it, else before it.
				const inQueue = !retrying && this.taskQueue.appendsAudit;
				if (audit && !inQueue) await this.recordAudit(audit);
				if (retrying) {
					const delay = retryDelay(lease.task.attempts, retryBaseDelayMs, retryMaxDelayMs);
					await this.taskQueue.retry(lease, delay, outcome.error!);
					return;
				}
				// The outcome and its task_completed/task_failed frame are stored together. Null: the lease
				// was lost and another delivery owns the stored outcome, its frame and the callback.
				const finished = await this.taskQueue.finish(
					lease,
					outcome,
					execution_time_ms,
					inQueue ? audit : undefined
				);
				if (finished) this.settle(finished);
			},

			async runTask(this: WorkersThis, task: TaskMessage): Promise<TaskRun> {
				const ctx = this.contextFor(task);
				try {
					if (task.type === "tool_execution") {
						let audit: AuditDraft | undefined;
						const execution = await this.execute(
							ctx,
							{
								...(task.payload as ExecutionRequest),
								execution_id: task.metadata.execution_id as string | undefined
							},
							async draft => void (audit = draft)
						);
						return execution.status === "completed"
							? {
									outcome: { status: "completed", result: execution.result },
									retryable: false,
									execution_time_ms: execution.execution_time_ms,
									audit
								}
							: {
									outcome: { status: "failed", error: execution.error },
									retryable: execution.error!.type !== "tool_error",
									execution_time_ms: execution.execution_time_ms,
									audit
								};
					}
					if (task.type === "tool_validation") {
						const report = await this.validateTool(task);
						return {
							outcome: { status: "completed", result: report as unknown as JsonObject },
							retryable: false
						};
					}
					// The same actions as `POST /tools` and `POST /registry/discover`, acting for the submitter.
					const action = task.type === "tool_discovery" ? "registry.discover" : "registry.register";
					const result = await ctx.call<JsonObject, JsonObject>(action, task.payload);
					return { outcome: { status: "completed", result }, retryable: false };
				} catch (err) {
					// Callers' mistakes found at run time (tool deleted, schema changed) are final; an
					// unavailable service or a timeout between nodes may pass.
					const retryable = !isClientError(err) || isUnavailable(err);
					const {
						message = String(err),
						type,
						data
					} = err as { message?: string; type?: string; data?: unknown };
					// A refused definition or discovery body: the result names each problem, as the direct request would.
					if (type === "VALIDATION_ERROR")
						return {
							outcome: {
								status: "failed",
								result: { errors: (data ?? []) as JsonObject[] },
								error: { type: "validation_error", message, errors: (data ?? []) as JsonObject[] }
							},
							retryable: false
						};
					return {
						outcome: {
							status: "failed",
							error: { type: retryable ? "upstream_error" : "tool_error", message }
						},
						retryable
					};
				}
			},

			/** Probes a tool's API and records the report and the upstream's health. */
			async validateTool(this: WorkersThis, task: TaskMessage): Promise<ValidationReport> {
				const ctx = this.contextFor(task);
				const tool = await ctx.call<StoredTool, JsonObject>("registry.resolve", {
					tool_id: task.payload.tool_id
				});
				const { problems, health } = (await toolFor(tool.type)?.probe?.(tool.config, {
					allowHosts: this.settings.outboundAllowHosts,
					timeoutMs: tool.timeout_ms
				})) ?? { problems: [], health: { state: "healthy" as const } };
				const report: ValidationReport = {
					valid: problems.length === 0,
					errors: problems,
					kind: "functional",
					checked_at: new Date().toISOString()
				};
				await ctx.call("registry.recordValidation", {
					id: tool.id,
					version: task.payload.version,
					report,
					health
				});
				return report;
			},

			/** Queue gauges; queues that drained since the last sample are set back to zero. */
			async sampleMetrics(this: WorkersThis) {
				const depths = await this.taskQueue.depths();
				const seen = new Set<string>();
				for (const { queue, tenant_id, pending, oldest_age_ms } of depths) {
					seen.add(queue);
					this.broker.metrics.set(METRICS.queueDepth, pending, { queue, tenant: tenant_id });
					this.broker.metrics.set(METRICS.queueOldestAge, oldest_age_ms / 1000, {
						queue,
						tenant: tenant_id
					});
				}
				for (const queue of this.sampledQueues)
					if (!seen.has(queue)) {
						const labels = { queue, tenant: queue.slice(queue.indexOf(":") + 1) };
						this.broker.metrics.set(METRICS.queueDepth, 0, labels);
						this.broker.metrics.set(METRICS.queueOldestAge, 0, labels);
					}
				this.sampledQueues = seen;
			}
		},

		created(this: WorkersThis) {
			this.sampledQueues = new Set();
			this.workers = new TaskWorkers(
				this.taskQueue,
				this.settings.tasks,
				{
					// SIGTERM: the broker is stopping as soon as it stops accepting requests, well before
					// services' `stopped`; from then on no task is claimed, those in hand finish.
					canClaim: () => !this.broker.stopping,
					handle: lease => this.handleTask(lease),
					// Their task_failed frames were recorded by the reap itself.
					onReaped: async ({ dead_lettered }) => dead_lettered.forEach(task => this.settle(task)),
					onError: (message, err) => this.logger.warn(message, err)
				},
				this.settings.clock
			);
		},

		started(this: WorkersThis) {
			// Tasks need the registry: a node that claimed them before discovering it would fail them all.
			this.broker.waitForServices(["registry"]).then(
				() => this.workers.start(),
				err => this.logger.error("The registry never appeared; queued tasks are not taken here", err)
			);
		},

		async stopped(this: WorkersThis) {
			// Graceful: no new work is taken; tasks in hand finish and are recorded first.
			await this.workers.stop();
		}
	};
	return mixin as Partial<ServiceSchema>;
}
