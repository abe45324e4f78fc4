import type { Context, Service, ServiceSchema } from "moleculer";
import { MetricsSamplerMixin } from "../mixins/metrics-sampler.mixin";
import { ResealMixin } from "../mixins/reseal.mixin";
import { RedisMixin } from "../mixins/redis.mixin";
import { AuditMixin, type AuditLocals, type AuditMethods, type AuditSettings } from "../mixins/audit.mixin";
import { TaskSubmissionMixin, type TaskSubmissionLocals } from "../mixins/task-submission.mixin";
import { TaskWorkersMixin, type TaskWorkerSettings } from "../mixins/task-workers.mixin";
import { GLOBAL_TENANT, TenantScopeMixin, type TenantScopeMethods } from "../mixins/tenant-scope.mixin";
import {
	ToolAccessMixin,
	type ToolAccessMethods,
	type ToolAccessSettings
} from "../mixins/tool-access.mixin";
import { executionMetrics, type ExecutionRecorder } from "../lib/metrics/execution-metrics";
import { EXECUTION_PARAMS, type ExecutionRequest, type ExecutionResult } from "../lib/execution";
import { newId } from "../lib/ids";
import type { AuditDraft } from "../lib/audit/audit-log";
import { ToolGuards, type ToolGuardOptions } from "../lib/tool-guards";
import { UsageStats } from "../lib/usage-stats";
import { ToolFailure, type ToolContext, type ToolEnvironment } from "../tools/base";
import { ExecutionContext } from "../lib/execution-context";
import { toolFor, toolTypes } from "../tools";
import type { TaskWorkers } from "../lib/tasks/task-workers";
import type { CallerMeta, JsonObject, StoredTool, ValidationProblem } from "../types/wire";
import { config } from "../lib/config";

export type { ExecutionRequest, ExecutionResult };

interface ExecutorOwnSettings {
	orchestratorUrl?: string;
	guards: ToolGuardOptions;
}

/** Besides its own, the service reads what its task, tool-access and audit mixins set. */
export type ExecutorSettings = ExecutorOwnSettings & TaskWorkerSettings & ToolAccessSettings & AuditSettings;

interface ExecutorMethods extends TenantScopeMethods, ToolAccessMethods, AuditMethods {
	refusesTenantCalls(action: string): boolean;
	run(
		ctx: Context<unknown, CallerMeta>,
		tool: StoredTool,
		parameters: JsonObject,
		timeoutMs: number,
		executionId: string
	): Promise<JsonObject>;
	/**
	 * Runs a tool for the caller and audits the run (sampled) through `audit`: appended at once by
	 * default; a queued task hands the entry to its queue, which appends it with the task's outcome.
	 */
	execute(
		ctx: Context<unknown, CallerMeta>,
		request: ExecutionRequest,
		audit?: (draft: AuditDraft) => Promise<void>
	): Promise<ExecutionResult>;
}

interface ExecutorLocals extends TaskSubmissionLocals, AuditLocals {
	guards: ToolGuards;
	usage: UsageStats;
	env: ToolEnvironment;
	workers: TaskWorkers;
	/** Counts and times executions into /metrics; null with METRICS=off. */
	recordExecution: ExecutionRecorder | null;
	/** Tool warm-ups started with the service (calculator worker pool). */
	toolsStarting: Promise<unknown>;
}

type ExecutorThis = Service<ExecutorSettings> & ExecutorMethods & ExecutorLocals;

/** Runs tools safely: resolve, check permission and parameters, run guarded with a timeout, record usage. */
const ExecutorService: ServiceSchema<ExecutorOwnSettings, ExecutorMethods, ExecutorLocals, ExecutorThis> = {
	name: "executor",
	// Moleculer runs mixins' `created` from the last listed to the first, and `stopped` the other way
	// round: each mixin is listed before those it builds on (Redis last, so it closes last).
	mixins: [
		MetricsSamplerMixin({ metrics: ["queueDepth", "queueOldestAge"] }),
		TaskWorkersMixin(),
		ResealMixin("tasks", "taskQueue"),
		TaskSubmissionMixin(),
		ToolAccessMixin(),
		TenantScopeMixin(),
		AuditMixin(),
		RedisMixin()
	],

	settings: {
		orchestratorUrl: config().orchestratorUrl,
		guards: {
			errorThresholdPercentage: 50,
			volumeThreshold: 10,
			rollingCountTimeout: 10000,
			resetTimeout: 15000,
			capacity: 64,
			maxGuards: 10000
		}
	},

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
		}
	},

	methods: {
		async execute(
			this: ExecutorThis,
			ctx: Context<unknown, CallerMeta>,
			request: ExecutionRequest,
			audit = (draft: AuditDraft) => this.recordAudit(draft)
		) {
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
			this.recordExecution?.(tenantId, tool.name, tool.type, error?.type ?? status, elapsedMs);
			this.usage.record({
				tenant_id: tenantId,
				tool_id: tool.id,
				status,
				error_type: error?.type,
				execution_time_ms: elapsedMs
			});
			const rate = this.settings.audit.executionSampleRate;
			if (rate >= 1 || (rate > 0 && Math.random() < rate))
				await audit(
					this.auditDraft(ctx, tenantId, "tool.execute", `tool:${tool.id}`, status, {
						definition_hash: tool.definition_hash,
						details: {
							execution_id: executionId,
							...(error ? { error_type: error.type } : {}),
							...(rate < 1 ? { sample_rate: rate } : {})
						}
					})
				);
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
				// Only a moleculer_action tool's tenant chooses the action; other types call fixed ones.
				if (
					tool.type === "moleculer_action" &&
					tool.tenant_id !== GLOBAL_TENANT &&
					this.refusesTenantCalls(action)
				)
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
		this.guards = new ToolGuards(settings.guards);
		this.usage = new UsageStats(this.redis, settings.redisPrefix);
		this.recordExecution = this.broker.isMetricsEnabled() ? executionMetrics(this.broker) : null;
		this.env = {
			orchestrator_url: settings.orchestratorUrl,
			service_token: settings.serviceToken,
			outbound_allow_hosts: settings.outboundAllowHosts
		};
	},

	started(this: ExecutorThis) {
		this.toolsStarting = Promise.all(
			Object.values(toolTypes).map(tool => tool.start?.() ?? Promise.resolve())
		);
	},

	async stopped(this: ExecutorThis) {
		// Runs before the mixins' `stopped`: the tasks in hand must finish while guards and tools still work.
		await this.workers.stop();
		this.guards.shutdown();
		// A warm-up still running would build a worker pool again after it is closed.
		await this.toolsStarting;
		// A failed last flush loses counters, not the rest of the stop (timers, Redis connection).
		await this.usage.close().catch(err => this.logger.warn("Flushing usage stats failed", err));
		await Promise.all(Object.values(toolTypes).map(tool => tool.close?.() ?? Promise.resolve()));
	}
};

export default ExecutorService;
