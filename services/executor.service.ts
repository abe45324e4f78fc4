import type { Context, Service, ServiceSchema } from "moleculer";
import { RedisMixin, type RedisLocals, type RedisSettings } from "../mixins/redis.mixin";
import { GLOBAL_TENANT, TenantScopeMixin, type TenantScopeMethods } from "../mixins/tenant-scope.mixin";
import { conflict, invalid, notFound } from "../lib/errors";
import { newId } from "../lib/ids";
import { createAjv, SchemaCache, toProblems } from "../lib/json-schema";
import { ToolGuards, type ToolGuardOptions } from "../lib/tool-guards";
import { UsageStats } from "../lib/usage-stats";
import { ToolFailure, type ToolContext, type ToolEnvironment } from "../tools/base";
import { toolFor, toolTypes } from "../tools";
import { MAX_TIMEOUT_MS } from "../lib/definition";
import type { CallerMeta, JsonObject, StoredTool } from "../types/wire";

export interface ExecutorSettings extends RedisSettings {
	orchestratorUrl?: string;
	serviceToken?: string;
	/** OUTBOUND_ALLOW_HOSTS: hosts or CIDRs tenant-configured calls may reach although private. */
	outboundAllowHosts: string[];
	/** How long a resolved tool is reused; `tool.*` events drop it sooner. */
	toolCacheTtlMs: number;
	/** Compiled parameter schemas kept (one per tool version). */
	schemaCacheSize: number;
	guards: ToolGuardOptions;
	$secureSettings: string[];
}

export interface ExecutionRequest {
	tool_id?: string;
	tool_name?: string;
	parameters?: JsonObject;
	timeout_ms?: number;
	execution_id?: string;
}

export interface ExecutionResult {
	execution_id: string;
	tool_id: string;
	tool_name: string;
	status: "completed" | "failed";
	result?: JsonObject;
	error?: { type: ToolFailure["type"]; message: string };
	execution_time_ms: number;
}

interface ExecutorMethods extends TenantScopeMethods {
	resolveTool(ctx: Context<unknown, CallerMeta>, request: ExecutionRequest): Promise<StoredTool>;
	checkParameters(tool: StoredTool, parameters: JsonObject): void;
	refusesTenantCalls(action: string): boolean;
	run(ctx: Context<unknown, CallerMeta>, tool: StoredTool, parameters: JsonObject, timeoutMs: number): Promise<JsonObject>;
	execute(ctx: Context<unknown, CallerMeta>, request: ExecutionRequest): Promise<ExecutionResult>;
}

interface ExecutorLocals extends RedisLocals {
	schemas: SchemaCache;
	guards: ToolGuards;
	usage: UsageStats;
	toolCache: Map<string, { tool: StoredTool; expires: number }>;
	env: ToolEnvironment;
}

type ExecutorThis = Service<ExecutorSettings> & ExecutorMethods & ExecutorLocals;

const listFromEnv = (value: string | undefined) =>
	(value ?? "")
		.split(",")
		.map(item => item.trim())
		.filter(Boolean);

const EXECUTION_PARAMS = {
	tool_id: { type: "string", max: 64, optional: true },
	tool_name: { type: "string", max: 64, optional: true },
	parameters: { type: "object", optional: true, default: {} },
	timeout_ms: { type: "number", integer: true, min: 1, max: MAX_TIMEOUT_MS, optional: true },
	execution_id: { type: "string", min: 1, max: 128, optional: true }
} as const;

/** Runs tools safely: resolve, check permission and parameters, run guarded with a timeout, record usage. */
const ExecutorService: ServiceSchema<ExecutorSettings, ExecutorMethods, ExecutorLocals, ExecutorThis> = {
	name: "executor",
	mixins: [RedisMixin(), TenantScopeMixin()],

	settings: {
		orchestratorUrl: process.env.ORCHESTRATOR_URL || undefined,
		serviceToken: process.env.SERVICE_TOKEN || undefined,
		outboundAllowHosts: listFromEnv(process.env.OUTBOUND_ALLOW_HOSTS),
		toolCacheTtlMs: 30000,
		schemaCacheSize: 5000,
		guards: {
			errorThresholdPercentage: 50,
			volumeThreshold: 10,
			rollingCountTimeout: 10000,
			resetTimeout: 15000,
			capacity: 64,
			maxGuards: 10000
		},
		$secureSettings: ["serviceToken"]
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
		}
	},

	events: {
		// Broadcast by every registry node: any change may alter what a name or id resolves to.
		"tool.*"(this: ExecutorThis) {
			this.toolCache.clear();
		}
	},

	methods: {
		async execute(this: ExecutorThis, ctx: Context<unknown, CallerMeta>, request: ExecutionRequest) {
			const tool = await this.resolveTool(ctx, request);
			const parameters = request.parameters ?? {};
			this.checkParameters(tool, parameters);
			const timeoutMs = Math.min(request.timeout_ms ?? tool.timeout_ms, tool.timeout_ms);
			const started = process.hrtime.bigint();
			const envelope = {
				execution_id: request.execution_id ?? newId(),
				tool_id: tool.id,
				tool_name: tool.name
			};
			let outcome: Pick<ExecutionResult, "status" | "result" | "error">;
			try {
				outcome = { status: "completed", result: await this.run(ctx, tool, parameters, timeoutMs) };
			} catch (err) {
				const failure =
					err instanceof ToolFailure ? err : new ToolFailure("tool_error", "the tool failed unexpectedly");
				if (!(err instanceof ToolFailure)) this.logger.warn(`Tool '${tool.id}' threw`, err);
				outcome = { status: "failed", error: { type: failure.type, message: failure.message } };
			}
			const execution_time_ms = Number(process.hrtime.bigint() - started) / 1e6;
			this.usage.record({
				tenant_id: this.tenantOf(ctx),
				tool_id: tool.id,
				status: outcome.status,
				error_type: outcome.error?.type,
				execution_time_ms
			});
			return { ...envelope, ...outcome, execution_time_ms: Math.round(execution_time_ms * 1000) / 1000 };
		},

		async resolveTool(this: ExecutorThis, ctx: Context<unknown, CallerMeta>, request: ExecutionRequest) {
			const tenantId = this.tenantOf(ctx);
			const agentId = this.agentOf(ctx);
			if (!request.tool_id && !request.tool_name)
				throw invalid("tool_id or tool_name is required", [{ field: "tool_id", message: "is required" }]);
			const cacheKey = `${tenantId}\u0000${request.tool_id ?? ""}\u0000${request.tool_name ?? ""}`;
			const cached = this.toolCache.get(cacheKey);
			let tool: StoredTool;
			if (cached && cached.expires > Date.now()) tool = cached.tool;
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
				throw conflict(`The tool is ${tool.status.replace("_", " ")} and cannot run`, { status: tool.status });
			return tool;
		},

		/**
		 * Whether the action exists but did not opt in to tool calls (`tool` in its schema). A missing
		 * action is left to the call itself, which reports it as an upstream failure.
		 */
		refusesTenantCalls(this: ExecutorThis, action: string): boolean {
			const endpoints = this.broker.registry.actions.get(action)?.endpoints ?? [];
			return endpoints.length > 0 && !endpoints.some(endpoint => Boolean((endpoint.action as { tool?: unknown }).tool));
		},

		checkParameters(this: ExecutorThis, tool: StoredTool, parameters: JsonObject) {
			const validate = this.schemas.get(`${tool.id}@${tool.version}`, tool.parameters);
			if (!validate(parameters))
				throw invalid("Parameters do not match the tool's schema", toProblems(validate.errors, "parameters"));
		},

		async run(
			this: ExecutorThis,
			ctx: Context<unknown, CallerMeta>,
			tool: StoredTool,
			parameters: JsonObject,
			timeoutMs: number
		) {
			const implementation = toolFor(tool.type);
			if (!implementation) throw new ToolFailure("tool_error", `tool type '${tool.type}' is not available`);
			const abort = new AbortController();
			const timeout = new ToolFailure("timeout", `the tool did not finish within ${timeoutMs} ms`);
			const timer = setTimeout(() => abort.abort(timeout), timeoutMs);
			const context: ToolContext = {
				tenant_id: this.tenantOf(ctx),
				agent_id: this.agentOf(ctx),
				execution_id: newId(),
				signal: abort.signal,
				timeout_ms: timeoutMs,
				env: this.env,
				// Only identity travels to the called action: not the gateway's scopes or credentials.
				call: (action, params, meta) => {
					if (tool.tenant_id !== GLOBAL_TENANT && this.refusesTenantCalls(action))
						throw new ToolFailure("tool_error", `'${action}' does not declare 'tool', so tenant tools may not call it`);
					return this.broker.call(action, params, { meta, timeout: timeoutMs });
				}
			};
			const attempt = () => {
				const running = implementation.execute(parameters, tool.config, context);
				const timedOut = new Promise<never>((_, reject) =>
					abort.signal.addEventListener("abort", () => reject(abort.signal.reason), { once: true })
				);
				// The tool may still settle after a timeout; its late result is dropped on purpose.
				running.catch(() => undefined);
				return Promise.race([running, timedOut]);
			};
			try {
				return implementation.callsOut
					? await this.guards.run(`${context.tenant_id}\u0000${tool.id}`, attempt)
					: await attempt();
			} finally {
				clearTimeout(timer);
				abort.abort();
			}
		}
	},

	created(this: ExecutorThis) {
		const { settings } = this;
		this.schemas = new SchemaCache(createAjv(), settings.schemaCacheSize);
		this.guards = new ToolGuards(settings.guards);
		this.usage = new UsageStats(this.redis, settings.redisPrefix);
		this.toolCache = new Map();
		this.env = {
			orchestrator_url: settings.orchestratorUrl,
			service_token: settings.serviceToken,
			outbound_allow_hosts: settings.outboundAllowHosts
		};
	},

	async stopped(this: ExecutorThis) {
		this.guards.shutdown();
		await this.usage.close();
		await Promise.all(Object.values(toolTypes).map(tool => tool.close?.()));
	}
};

export default ExecutorService;
