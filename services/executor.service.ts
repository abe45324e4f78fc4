import type { Context, Service, ServiceSchema } from "moleculer";
import { MetricsSamplerMixin } from "../mixins/metrics-sampler.mixin";
import { RedisMixin, type RedisLocals, type RedisSettings } from "../mixins/redis.mixin";
import { METRICS } from "../lib/metrics/names";
import { GLOBAL_TENANT, TenantScopeMixin, type TenantScopeMethods } from "../mixins/tenant-scope.mixin";
import {
	conflict,
	definitionChanged,
	forbidden,
	invalid,
	isClientError,
	isUnavailable,
	notFound
} from "../lib/errors";
import { newId } from "../lib/ids";
import { createAjv } from "../lib/json-schema";
import { DEFAULT_SCHEMA_GUARD, SchemaGuard, type SchemaGuardOptions } from "../lib/schema-guard";
import { ToolGuards, type ToolGuardOptions } from "../lib/tool-guards";
import { UsageStats } from "../lib/usage-stats";
import { ToolFailure, type ToolContext, type ToolEnvironment } from "../tools/base";
import { ExecutionContext } from "../lib/execution-context";
import { toolFor, toolTypes } from "../tools";
import { DEFAULT_OUTPUT_VALIDATION, MAX_TIMEOUT_MS } from "../lib/definition";
import { deliverCallback } from "../lib/callbacks";
import { probeOrigin } from "../lib/outbound/probe";
import { MemoryTaskQueue } from "../lib/queue/memory-task-queue";
import { RedisTaskQueue } from "../lib/queue/redis-task-queue";
import type { Lease, TaskMessage, TaskOutcome, TaskQueue, TaskType } from "../lib/queue/task-queue";
import { TaskWorkers, type TaskWorkerOptions } from "../lib/queue/task-workers";
import type { TaskUpdate } from "../lib/task-events";
import type { CallerMeta, JsonObject, StoredTool, ValidationProblem, ValidationReport } from "../types/wire";
import { config } from "../lib/config";

export interface ExecutorSettings extends RedisSettings {
	orchestratorUrl?: string;
	serviceToken?: string;
	/** OUTBOUND_ALLOW_HOSTS: hosts or CIDRs tenant-configured calls may reach although private. */
	outboundAllowHosts: string[];
	/** How long a resolved tool is reused; `tool.*` events drop it sooner. */
	toolCacheTtlMs: number;
	/** Compiled parameter schemas kept (one per tool version). */
	schemaCacheSize: number;
	/** What parameter validation may do on the event loop, and the limits of the schema threads. */
	schemaGuard: SchemaGuardOptions;
	guards: ToolGuardOptions;
	tasks: TaskWorkerOptions & {
		/** Retries of a task whose tool failed with `upstream_error` or `timeout`. */
		maxRetries: number;
		retryBaseDelayMs: number;
		retryMaxDelayMs: number;
		/** Finished tasks stay readable this long. */
		retentionS: number;
	};
	callbacks: { secret?: string; attempts: number; baseDelayMs: number; timeoutMs: number };
	$secureSettings: string[];
}

export interface ExecutionRequest {
	tool_id?: string;
	tool_name?: string;
	parameters?: JsonObject;
	timeout_ms?: number;
	execution_id?: string;
	/** The `definition_hash` the caller approved: another definition does not run. */
	expected_hash?: string;
}

export interface ExecutionResult {
	execution_id: string;
	tool_id: string;
	tool_name: string;
	status: "completed" | "failed";
	result?: JsonObject;
	error?: { type: ToolFailure["type"]; message: string };
	execution_time_ms: number;
	/** How a completed result misses the tool's `output_schema` (`output_validation: warn`). */
	output_problems?: ValidationProblem[];
}

interface ExecutorMethods extends TenantScopeMethods {
	resolveTool(
		ctx: Context<unknown, CallerMeta>,
		request: ExecutionRequest,
		agentId?: string | null
	): Promise<StoredTool>;
	checkOutput(tool: StoredTool, result: JsonObject): Promise<ValidationProblem[] | undefined>;
	checkParameters(tool: StoredTool, parameters: JsonObject): Promise<void>;
	refusesTenantCalls(action: string): boolean;
	run(
		ctx: Context<unknown, CallerMeta>,
		tool: StoredTool,
		parameters: JsonObject,
		timeoutMs: number,
		executionId: string
	): Promise<JsonObject>;
	execute(ctx: Context<unknown, CallerMeta>, request: ExecutionRequest): Promise<ExecutionResult>;
	contextFor(task: TaskMessage): Context<unknown, CallerMeta>;
	handleTask(lease: Lease): Promise<void>;
	runTask(
		task: TaskMessage
	): Promise<{ outcome: TaskOutcome; retryable: boolean; execution_time_ms?: number }>;
	validateTool(task: TaskMessage): Promise<ValidationReport>;
	announce(update: TaskUpdate): void;
	settle(task: TaskMessage): void;
	ownTask(ctx: Context<unknown, CallerMeta>, taskId: string): Promise<TaskMessage>;
	signalWork(): void;
	sampleMetrics(): Promise<void>;
}

interface ExecutorLocals extends RedisLocals {
	schemas: SchemaGuard;
	guards: ToolGuards;
	usage: UsageStats;
	toolCache: Map<string, { tool: StoredTool; expires: number }>;
	env: ToolEnvironment;
	queue: TaskQueue;
	workers: TaskWorkers;
	lastWorkSignal: number;
	sampledQueues: Set<string>;
	/** Tool warm-ups started with the service (calculator worker pool). */
	toolsStarting: Promise<unknown>;
	checkPayload(payload: unknown): true | { field: string; message: string }[];
}

type ExecutorThis = Service<ExecutorSettings> & ExecutorMethods & ExecutorLocals;

const EXECUTION_PARAMS = {
	tool_id: { type: "string", max: 64, optional: true },
	tool_name: { type: "string", max: 64, optional: true },
	parameters: { type: "object", optional: true, default: {} },
	timeout_ms: { type: "number", integer: true, min: 1, max: MAX_TIMEOUT_MS, optional: true },
	execution_id: { type: "string", min: 1, max: 128, optional: true },
	expected_hash: { type: "string", max: 100, optional: true }
} as const;

/** Why a callback URL cannot be used, or null: parsed as the outbound client will, http(s), no credentials. */
function callbackUrlProblem(value: string): string | null {
	let url: URL;
	try {
		url = new URL(value);
	} catch {
		return "must be an absolute http(s) URL";
	}
	if (url.protocol !== "http:" && url.protocol !== "https:") return "must be an http(s) URL";
	if (url.username || url.password) return "must not carry credentials";
	return null;
}

/** A new pending task; the server's own fields are set here, never taken from a caller. */
const newTask = (
	fields: Pick<
		TaskMessage,
		"task_id" | "tenant_id" | "type" | "priority" | "metadata" | "payload" | "callback_url"
	>
): TaskMessage => {
	const now = new Date().toISOString();
	// Not spread: once optimised, V8 gives every object spread and then extended a hidden class of its own.
	return Object.assign({}, fields, {
		created_at: now,
		updated_at: now,
		status: "pending" as const,
		attempts: 0
	});
};

/** `payload` of a queued execution: the execution request plus the message's informative `tool_type`. */
const TASK_PAYLOAD_PARAMS = {
	$$strict: true,
	...EXECUTION_PARAMS,
	tool_type: { type: "string", max: 64, optional: true }
};

/** Runs tools safely: resolve, check permission and parameters, run guarded with a timeout, record usage. */
const ExecutorService: ServiceSchema<ExecutorSettings, ExecutorMethods, ExecutorLocals, ExecutorThis> = {
	name: "executor",
	mixins: [
		RedisMixin(),
		TenantScopeMixin(),
		MetricsSamplerMixin({ metrics: ["executions", "executionDuration", "queueDepth", "queueOldestAge"] })
	],

	settings: {
		orchestratorUrl: config().orchestratorUrl,
		serviceToken: config().serviceToken,
		outboundAllowHosts: config().outboundAllowHosts,
		toolCacheTtlMs: 30000,
		schemaCacheSize: 5000,
		schemaGuard: DEFAULT_SCHEMA_GUARD,
		guards: {
			errorThresholdPercentage: 50,
			volumeThreshold: 10,
			rollingCountTimeout: 10000,
			resetTimeout: 15000,
			capacity: 64,
			maxGuards: 10000
		},
		tasks: {
			// Most tools wait on an upstream, so a node keeps many in flight; the calculator pool bounds its own.
			concurrency: config().taskConcurrency,
			leaseMs: 5000,
			reapIntervalMs: 1000,
			maxDeliveries: 5,
			pollIntervalMs: 500,
			maxRetries: 3,
			retryBaseDelayMs: 1000,
			retryMaxDelayMs: 30000,
			retentionS: 24 * 3600
		},
		callbacks: {
			secret: config().callbackSecret,
			attempts: 4,
			baseDelayMs: 1000,
			timeoutMs: 10000
		},
		$secureSettings: ["serviceToken", "callbacks"]
	} as ExecutorSettings,

	actions: {
		execute: {
			params: { $$strict: true, ...EXECUTION_PARAMS },
			// Moleculer's own bulkhead bounds what one executor node takes on at once.
			bulkhead: { enabled: true, concurrency: 256, maxQueueSize: 4096 },
			handler(this: ExecutorThis, ctx: Context<ExecutionRequest, CallerMeta>) {
				return this.execute(ctx, ctx.params);
			}
		},

		stats: {
			params: { id: { type: "string", max: 64 } },
			async handler(this: ExecutorThis, ctx: Context<{ id: string }, CallerMeta>) {
				const tenantId = this.tenantOf(ctx);
				// registry.get answers 404 for a tool the tenant cannot see.
				await ctx.call("registry.get", { id: ctx.params.id });
				return this.usage.get(tenantId, ctx.params.id);
			}
		},

		submit: {
			params: {
				task_id: { type: "string", pattern: /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/, optional: true },
				tenant_id: { type: "string", max: 128, optional: true },
				type: { type: "enum", values: ["tool_execution", "tool_registration"], default: "tool_execution" },
				priority: { type: "number", integer: true, min: 0, max: 9, default: 0 },
				metadata: {
					type: "object",
					optional: true,
					default: {},
					props: {
						agent_id: { type: "string", min: 1, max: 128, optional: true },
						session_id: { type: "string", max: 128, optional: true },
						execution_id: { type: "string", min: 1, max: 128, optional: true },
						source: { type: "enum", values: ["agent_execution", "workflow", "api"], optional: true },
						global_task_id: { type: "string", max: 128, optional: true }
					}
				},
				payload: { type: "object" },
				callback_url: { type: "string", max: 2048, optional: true },
				// Server-owned fields of the message: accepted so a read can be resubmitted, never taken.
				created_at: { type: "any", optional: true },
				updated_at: { type: "any", optional: true },
				status: { type: "any", optional: true },
				result: { type: "any", optional: true },
				error: { type: "any", optional: true },
				attempts: { type: "any", optional: true }
			},
			async handler(this: ExecutorThis, ctx: Context<TaskMessage, CallerMeta>) {
				const tenantId = this.tenantOf(ctx);
				const { task_id, tenant_id, type, priority, callback_url } = ctx.params;
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
					const existing = await this.queue.get(task_id);
					if (existing && existing.tenant_id !== tenantId) throw conflict("task_id is already in use");
					if (existing) return existing;
				}
				let payload: JsonObject = ctx.params.payload;
				// Everything that can be checked is checked now, so a bad task is refused before it is queued.
				if (type === "tool_execution") {
					const request = payload as ExecutionRequest;
					const shape = this.checkPayload(request);
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
					payload = {
						tool_id: tool.id,
						tool_name: tool.name,
						tool_type: tool.type,
						parameters: request.parameters ?? {},
						timeout_ms: Math.min(request.timeout_ms ?? tool.timeout_ms, tool.timeout_ms),
						// Checked again when the task runs: the definition may change while it waits.
						...(request.expected_hash ? { expected_hash: request.expected_hash } : {})
					};
					metadata.execution_id ??= newId();
				} else {
					const report = await ctx.call<{ valid: boolean; errors: unknown }, JsonObject>(
						"validator.validate",
						payload
					);
					if (!report.valid) throw invalid("Tool definition is invalid", report.errors);
				}
				const { task, created } = await this.queue.submit(
					newTask({
						task_id: task_id ?? newId(),
						tenant_id: tenantId,
						type: type as TaskType,
						priority,
						metadata,
						payload,
						...(callback_url ? { callback_url } : {})
					})
				);
				if (!created) return task;
				// No "queued" announcement: the submitter has the 202; updates start with "processing".
				this.signalWork();
				return { task_id: task.task_id, status: task.status };
			}
		},

		status: {
			params: { task_id: { type: "string", max: 64 } },
			handler(this: ExecutorThis, ctx: Context<{ task_id: string }, CallerMeta>) {
				return this.ownTask(ctx, ctx.params.task_id);
			}
		},

		cancel: {
			params: { task_id: { type: "string", max: 64 } },
			async handler(this: ExecutorThis, ctx: Context<{ task_id: string }, CallerMeta>) {
				await this.ownTask(ctx, ctx.params.task_id);
				const answer = await this.queue.cancel(ctx.params.task_id);
				if (!answer) throw notFound("Task", ctx.params.task_id);
				const { task, cancelled } = answer;
				// Only the call that cancelled it answers 200: cancelling again is a conflict like any non-pending task.
				if (!cancelled) throw conflict(`The task is ${task.status}`, { status: task.status });
				this.announce({ event: "task_status_update", task, message: "cancelled" });
				this.settle(task);
				return task;
			}
		},

		/** Queues the functional validation of a tool (a probe of its API). Used by the registry. */
		queueValidation: {
			visibility: "public",
			params: { tool_id: { type: "string", max: 64 }, version: { type: "number", integer: true } },
			async handler(this: ExecutorThis, ctx: Context<{ tool_id: string; version: number }, CallerMeta>) {
				const { task } = await this.queue.submit(
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
			handler(this: ExecutorThis) {
				return this.queue.depths();
			}
		}
	},

	events: {
		// Broadcast by every registry node: any change may alter what a name or id resolves to.
		"tool.*"(this: ExecutorThis) {
			this.toolCache.clear();
		},

		// Another node queued work: idle workers here look now instead of at their next poll.
		"executor.work"(this: ExecutorThis) {
			this.workers.wake();
		}
	},

	methods: {
		async execute(this: ExecutorThis, ctx: Context<unknown, CallerMeta>, request: ExecutionRequest) {
			const tool = await this.resolveTool(ctx, request);
			const parameters = request.parameters ?? {};
			await this.checkParameters(tool, parameters);
			const timeoutMs = Math.min(request.timeout_ms ?? tool.timeout_ms, tool.timeout_ms);
			const started = performance.now();
			const executionId = request.execution_id ?? newId();
			let result: JsonObject | undefined;
			let error: ExecutionResult["error"];
			let outputProblems: ValidationProblem[] | undefined;
			try {
				result = await this.run(ctx, tool, parameters, timeoutMs, executionId);
				outputProblems = await this.checkOutput(tool, result);
			} catch (err) {
				const failure =
					err instanceof ToolFailure ? err : new ToolFailure("tool_error", "the tool failed unexpectedly");
				if (!(err instanceof ToolFailure)) this.logger.warn(`Tool '${tool.id}' threw`, err);
				error = { type: failure.type, message: failure.message };
			}
			const elapsedMs = performance.now() - started;
			const status = error ? "failed" : "completed";
			const tenantId = this.tenantOf(ctx);
			if (this.broker.isMetricsEnabled()) {
				const outcome = error?.type ?? status;
				this.broker.metrics.increment(METRICS.executions, {
					tenant: tenantId,
					tool: tool.name,
					type: tool.type,
					outcome
				});
				this.broker.metrics.observe(METRICS.executionDuration, elapsedMs, { type: tool.type });
			}
			this.usage.record({
				tenant_id: tenantId,
				tool_id: tool.id,
				status,
				error_type: error?.type,
				execution_time_ms: elapsedMs
			});
			const execution_time_ms = Math.round(elapsedMs * 1000) / 1000;
			// Literals, not `{ ...envelope, result }`: once optimised, V8 gives every object spread and then
			// extended a hidden class of its own, which cost a third of an execution's time in GC.
			const { id: tool_id, name: tool_name } = tool;
			if (error) return { execution_id: executionId, tool_id, tool_name, status, error, execution_time_ms };
			return outputProblems
				? {
						execution_id: executionId,
						tool_id,
						tool_name,
						status,
						result,
						execution_time_ms,
						output_problems: outputProblems
					}
				: { execution_id: executionId, tool_id, tool_name, status, result, execution_time_ms };
		},

		async resolveTool(
			this: ExecutorThis,
			ctx: Context<unknown, CallerMeta>,
			request: ExecutionRequest,
			agentId = this.agentOf(ctx)
		) {
			const tenantId = this.tenantOf(ctx);
			if (!request.tool_id && !request.tool_name)
				throw invalid("tool_id or tool_name is required", [{ field: "tool_id", message: "is required" }]);
			const cacheKey = `${tenantId}\u0000${request.tool_id ?? ""}\u0000${request.tool_name ?? ""}`;
			const cached = this.toolCache.get(cacheKey);
			// A pin that the cached copy misses may be of a change this node has not heard of yet: ask the registry.
			const stalePin =
				request.expected_hash !== undefined && cached?.tool.definition_hash !== request.expected_hash;
			let tool: StoredTool;
			if (cached && cached.expires > Date.now() && !stalePin) tool = cached.tool;
			else {
				tool = await ctx.call<StoredTool, ExecutionRequest>("registry.resolve", {
					tool_id: request.tool_id,
					tool_name: request.tool_name
				});
				this.toolCache.set(cacheKey, { tool, expires: Date.now() + this.settings.toolCacheTtlMs });
			}
			const agents = tool.permissions.agents;
			// A tool the agent may not use is reported exactly like a missing one.
			if (!agents.includes("*") && !(agentId && agents.includes(agentId)))
				throw notFound("Tool", request.tool_id ?? request.tool_name);
			if (tool.status !== "active")
				throw conflict(`The tool is ${tool.status.replace("_", " ")} and cannot run`, {
					status: tool.status
				});
			if (request.expected_hash !== undefined && request.expected_hash !== tool.definition_hash)
				throw definitionChanged(tool.definition_hash);
			return tool;
		},

		/** A context acting for the task's tenant and agent, as the submitting caller did. */
		contextFor(this: ExecutorThis, task: TaskMessage): Context<unknown, CallerMeta> {
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

		async handleTask(this: ExecutorThis, lease: Lease) {
			this.announce({
				event: "task_status_update",
				task: lease.task,
				message: `attempt ${lease.task.attempts}`
			});
			const { outcome, retryable, execution_time_ms } = await this.runTask(lease.task);
			const { maxRetries, retryBaseDelayMs, retryMaxDelayMs } = this.settings.tasks;
			if (outcome.status === "failed" && retryable && lease.task.attempts <= maxRetries) {
				const delay = Math.min(retryBaseDelayMs * 2 ** (lease.task.attempts - 1), retryMaxDelayMs);
				if (await this.queue.retry(lease, delay, outcome.error!))
					this.announce({
						event: "task_status_update",
						task: { ...lease.task, status: "pending" },
						message: `retrying in ${delay} ms`
					});
				return;
			}
			// Announced before the outcome is stored: a worker killed in between leaves the task leased, so
			// it runs again and is announced again (at-least-once), instead of stored but never announced.
			const { result: _result, error: _error, ...running } = lease.task;
			this.announce({
				event: outcome.status === "completed" ? "task_completed" : "task_failed",
				task: Object.assign(running, outcome, { updated_at: new Date().toISOString() }),
				execution_time_ms
			});
			const finished = await this.queue.finish(lease, outcome);
			// Null: the lease was lost and another delivery owns the stored outcome and the callback.
			if (finished) this.settle(finished);
		},

		/** Runs a task's work; failures become outcomes, marked retryable when trying again may help. */
		async runTask(this: ExecutorThis, task: TaskMessage) {
			const ctx = this.contextFor(task);
			try {
				if (task.type === "tool_execution") {
					const execution = await this.execute(ctx, {
						...(task.payload as ExecutionRequest),
						execution_id: task.metadata.execution_id as string | undefined
					});
					return execution.status === "completed"
						? {
								outcome: { status: "completed" as const, result: execution.result },
								retryable: false,
								execution_time_ms: execution.execution_time_ms
							}
						: {
								outcome: { status: "failed" as const, error: execution.error },
								retryable: execution.error!.type !== "tool_error",
								execution_time_ms: execution.execution_time_ms
							};
				}
				if (task.type === "tool_validation") {
					const report = await this.validateTool(task);
					return {
						outcome: { status: "completed" as const, result: report as unknown as JsonObject },
						retryable: false
					};
				}
				const tool = await ctx.call<JsonObject, JsonObject>("registry.register", task.payload);
				return { outcome: { status: "completed" as const, result: tool }, retryable: false };
			} catch (err) {
				const e = err as { message?: string };
				// Callers' mistakes found at run time (tool deleted, schema changed) are final; an
				// unavailable service or a timeout between nodes may pass.
				const retryable = !isClientError(err) || isUnavailable(err);
				return {
					outcome: {
						status: "failed" as const,
						error: { type: retryable ? "upstream_error" : "tool_error", message: e.message ?? String(err) }
					},
					retryable
				};
			}
		},

		/** Probes a tool's API and records the report and the upstream's health. */
		async validateTool(this: ExecutorThis, task: TaskMessage): Promise<ValidationReport> {
			const ctx = this.contextFor(task);
			const tool = await ctx.call<StoredTool, JsonObject>("registry.resolve", {
				tool_id: task.payload.tool_id
			});
			const { problems, health } = await probeOrigin(String(tool.config.url), {
				allowHosts: this.settings.outboundAllowHosts,
				timeoutMs: tool.timeout_ms
			});
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

		/**
		 * One update, two audiences: one notifier node (it keeps the orchestrator's outbox) and every
		 * gateway (each serves its own UI WebSocket clients).
		 */
		announce(this: ExecutorThis, update: TaskUpdate) {
			this.broker.emit("task.updated", update, { groups: ["notifier"] });
			this.broker.broadcast("task.updated", update, { groups: ["api"] });
		},

		/** POSTs a finished task to its callback URL, in the background. */
		settle(this: ExecutorThis, task: TaskMessage) {
			if (!task.callback_url) return;
			const { secret, ...options } = this.settings.callbacks;
			deliverCallback(task.callback_url, task, {
				...options,
				// Unsigned only when no secret exists at all (a development setup without SERVICE_TOKEN).
				secret: secret ?? this.settings.serviceToken,
				allowHosts: this.settings.outboundAllowHosts
			}).then(delivered => {
				if (!delivered) this.logger.warn(`Callback of task ${task.task_id} was not delivered`);
			});
		},

		async ownTask(this: ExecutorThis, ctx: Context<unknown, CallerMeta>, taskId: string) {
			const task = await this.queue.get(taskId);
			if (!task || task.tenant_id !== this.tenantOf(ctx)) throw notFound("Task", taskId);
			return task;
		},

		/** Queue gauges; queues that drained since the last sample are set back to zero. */
		async sampleMetrics(this: ExecutorThis) {
			const depths = await this.queue.depths();
			const seen = new Set<string>();
			for (const { queue, tenant_id, pending, oldest_age_ms } of depths) {
				seen.add(queue);
				this.broker.metrics.set(METRICS.queueDepth, pending, { queue, tenant: tenant_id });
				this.broker.metrics.set(METRICS.queueOldestAge, oldest_age_ms / 1000, { queue, tenant: tenant_id });
			}
			for (const queue of this.sampledQueues)
				if (!seen.has(queue)) {
					const labels = { queue, tenant: queue.slice(queue.indexOf(":") + 1) };
					this.broker.metrics.set(METRICS.queueDepth, 0, labels);
					this.broker.metrics.set(METRICS.queueOldestAge, 0, labels);
				}
			this.sampledQueues = seen;
		},

		/** Wakes a local worker at once and other executor nodes at most every 50 ms. */
		signalWork(this: ExecutorThis) {
			this.workers.wake(1);
			if (Date.now() - this.lastWorkSignal < 50) return;
			this.lastWorkSignal = Date.now();
			this.broker.broadcast("executor.work", {}, { groups: ["executor"] });
		},

		/**
		 * Whether the action exists but did not opt in to tool calls (`tool` in its schema). A missing
		 * action is left to the call itself, which reports it as an upstream failure.
		 */
		refusesTenantCalls(this: ExecutorThis, action: string): boolean {
			const endpoints = this.broker.registry.actions.get(action)?.endpoints ?? [];
			return (
				endpoints.length > 0 &&
				!endpoints.some(endpoint => Boolean((endpoint.action as { tool?: unknown }).tool))
			);
		},

		/**
		 * Checks a result against the tool's `output_schema`: a `strict` tool fails with
		 * `output_invalid`; a `warn` tool (the default) passes with the problems in `output_problems`.
		 */
		async checkOutput(this: ExecutorThis, tool: StoredTool, result: JsonObject) {
			const mode = tool.output_validation ?? DEFAULT_OUTPUT_VALIDATION;
			if (!tool.output_schema || mode === "off") return undefined;
			const problems = await this.schemas.validate(
				`${tool.id}@${tool.version}:output`,
				tool.output_schema,
				result,
				"result"
			);
			if (!problems.length) return undefined;
			if (mode === "strict")
				throw new ToolFailure(
					"output_invalid",
					`the result does not match the tool's output_schema: ${problems.map(p => `${p.field} ${p.message}`).join("; ")}`
				);
			return problems;
		},

		async checkParameters(this: ExecutorThis, tool: StoredTool, parameters: JsonObject) {
			const problems = await this.schemas.validate(`${tool.id}@${tool.version}`, tool.parameters, parameters);
			if (problems.length) throw invalid("Parameters do not match the tool's schema", problems);
		},

		async run(
			this: ExecutorThis,
			ctx: Context<unknown, CallerMeta>,
			tool: StoredTool,
			parameters: JsonObject,
			timeoutMs: number,
			executionId: string
		) {
			const implementation = toolFor(tool.type);
			if (!implementation) throw new ToolFailure("tool_error", `tool type '${tool.type}' is not available`);
			let timer: NodeJS.Timeout | undefined;
			// Only identity travels to the called action: not the gateway's scopes or credentials.
			const call: ToolContext["call"] = (action, params, meta) => {
				if (tool.tenant_id !== GLOBAL_TENANT && this.refusesTenantCalls(action))
					throw new ToolFailure(
						"tool_error",
						`'${action}' does not declare 'tool', so tenant tools may not call it`
					);
				// The request id travels on, so one request is followed across nodes (X-Request-ID).
				return this.broker.call(action, params, {
					meta,
					timeout: timeoutMs,
					requestID: ctx.requestID ?? undefined
				});
			};
			const context = new ExecutionContext(
				this.tenantOf(ctx),
				this.agentOf(ctx),
				executionId,
				timeoutMs,
				this.env,
				call
			);
			// On timeout the tool's signal aborts (so it stops waiting on whatever it waits on) and the
			// run fails at once; a late result of the tool is dropped on purpose.
			const attempt = () =>
				new Promise<JsonObject>((resolve, reject) => {
					timer = setTimeout(() => {
						const reason = new ToolFailure("timeout", `the tool did not finish within ${timeoutMs} ms`);
						context.abort(reason);
						reject(reason);
					}, timeoutMs);
					implementation.execute(parameters, tool.config, context).then(resolve, reject);
				});
			try {
				return implementation.callsOut
					? // Per version: fixing a tool's endpoint starts it with a closed circuit.
						await this.guards.run(`${context.tenant_id}\u0000${tool.id}@${tool.version}`, attempt)
					: await attempt();
			} finally {
				clearTimeout(timer);
			}
		}
	},

	created(this: ExecutorThis) {
		const { settings } = this;
		this.schemas = new SchemaGuard(createAjv(), settings.schemaGuard, settings.schemaCacheSize);
		this.checkPayload = this.broker.validator!.compile(TASK_PAYLOAD_PARAMS) as ExecutorLocals["checkPayload"];
		this.guards = new ToolGuards(settings.guards);
		this.usage = new UsageStats(this.redis, settings.redisPrefix);
		this.toolCache = new Map();
		this.lastWorkSignal = 0;
		this.sampledQueues = new Set();
		this.queue = this.redis
			? new RedisTaskQueue(this.redis, settings.redisPrefix, settings.tasks.retentionS)
			: new MemoryTaskQueue(settings.tasks.retentionS * 1000);
		this.workers = new TaskWorkers(this.queue, settings.tasks, {
			// SIGTERM: the broker is stopping as soon as it stops accepting requests, well before
			// services' `stopped`; from then on no task is claimed, those in hand finish.
			canClaim: () => !this.broker.stopping,
			handle: lease => this.handleTask(lease),
			onReaped: async ({ dead_lettered }) => {
				for (const task of dead_lettered) {
					this.announce({ event: "task_failed", task });
					this.settle(task);
				}
			},
			onError: (message, err) => this.logger.warn(message, err)
		});
		this.env = {
			orchestrator_url: settings.orchestratorUrl,
			service_token: settings.serviceToken,
			outbound_allow_hosts: settings.outboundAllowHosts
		};
	},

	started(this: ExecutorThis) {
		this.toolsStarting = Promise.all(Object.values(toolTypes).map(tool => tool.start?.()));
		// Tasks need the registry: a node that claimed them before discovering it would fail them all.
		this.broker.waitForServices(["registry"]).then(
			() => this.workers.start(),
			err => this.logger.error("The registry never appeared; queued tasks are not taken here", err)
		);
	},

	async stopped(this: ExecutorThis) {
		// Graceful: no new work is taken; tasks in hand finish and are recorded first.
		await this.workers.stop();
		this.guards.shutdown();
		// A warm-up still running would build a worker pool again after it is closed.
		await this.toolsStarting;
		await this.usage.close();
		await Promise.all([...Object.values(toolTypes).map(tool => tool.close?.()), this.schemas.close()]);
	}
};

export default ExecutorService;
