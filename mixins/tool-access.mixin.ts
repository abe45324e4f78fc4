import type { Context, Service, ServiceSchema } from "moleculer";
import { conflict, definitionChanged, invalid, notFound } from "../lib/errors";
import type { ExecutionRequest } from "../lib/execution";
import { createAjv } from "../lib/json-schema";
import { DEFAULT_SCHEMA_GUARD, SchemaGuard, type SchemaGuardOptions } from "../lib/schema-guard";
import type { CallerMeta, JsonObject, StoredTool, ValidationProblem } from "../types/wire";
import { DEFAULT_OUTPUT_VALIDATION } from "../lib/definition";
import { ToolFailure } from "../lib/tool-contract";
import type { TenantScopeMethods } from "./tenant-scope.mixin";
import { ANY_AGENT } from "../lib/tenancy";

export interface ToolAccessSettings {
	/** How long a resolved tool is reused; `tool.*` events drop it sooner. */
	toolCacheTtlMs: number;
	/** Compiled parameter schemas kept (one per tool version). */
	schemaCacheSize: number;
	/** What parameter validation may do on the event loop, and the limits of the schema threads. */
	schemaGuard: SchemaGuardOptions;
}

export interface ToolAccessMethods {
	/** The tool a request names, if the caller's agent may run it and it is active. */
	resolveTool(
		ctx: Context<unknown, CallerMeta>,
		request: ExecutionRequest,
		agentId?: string | null
	): Promise<StoredTool>;
	/** Throws a 422 naming each problem when `parameters` do not match the tool's schema. */
	checkParameters(tool: StoredTool, parameters: JsonObject): Promise<void>;
	/**
	 * Checks a result against the tool's `output_schema`: a `strict` tool fails with `output_invalid`;
	 * a `warn` tool (the default) passes, and the problems are returned for `output_problems`.
	 */
	checkOutput(tool: StoredTool, result: JsonObject): Promise<ValidationProblem[] | undefined>;
}

interface ToolAccessLocals {
	schemas: SchemaGuard;
	toolCache: Map<string, { tool: StoredTool; expires: number }>;
}

type ToolAccessThis = Service<ToolAccessSettings> & ToolAccessMethods & ToolAccessLocals & TenantScopeMethods;

/**
 * What running a tool and queueing its run both check first: the tool resolves for the caller (through
 * `registry.resolve`, cached briefly), the agent may use it, it is active, the parameters fit its schema.
 * Needs TenantScopeMixin in the host service.
 */
export function ToolAccessMixin(): Partial<ServiceSchema> {
	const mixin: Partial<
		ServiceSchema<ToolAccessSettings, ToolAccessMethods, ToolAccessLocals, ToolAccessThis>
	> = {
		settings: {
			toolCacheTtlMs: 30000,
			schemaCacheSize: 5000,
			schemaGuard: DEFAULT_SCHEMA_GUARD
		},

		events: {
			// Broadcast by every registry node: any change may alter what a name or id resolves to.
			"tool.*"(this: ToolAccessThis) {
				this.toolCache.clear();
			}
		},

		methods: {
			async resolveTool(
				this: ToolAccessThis,
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
				if (!agents.includes(ANY_AGENT) && !(agentId && agents.includes(agentId)))
					throw notFound("Tool", request.tool_id ?? request.tool_name);
				if (tool.status !== "active")
					throw conflict(`The tool is ${tool.status.replace("_", " ")} and cannot run`, {
						status: tool.status
					});
				if (request.expected_hash !== undefined && request.expected_hash !== tool.definition_hash)
					throw definitionChanged(tool.definition_hash);
				return tool;
			},

			async checkParameters(this: ToolAccessThis, tool: StoredTool, parameters: JsonObject) {
				const problems = await this.schemas.validate(
					`${tool.id}@${tool.version}`,
					tool.parameters,
					parameters
				);
				if (problems.length) throw invalid("Parameters do not match the tool's schema", problems);
			},

			async checkOutput(this: ToolAccessThis, tool: StoredTool, result: JsonObject) {
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
			}
		},

		created(this: ToolAccessThis) {
			this.schemas = new SchemaGuard(createAjv(), this.settings.schemaGuard, this.settings.schemaCacheSize);
			this.toolCache = new Map();
		},

		async stopped(this: ToolAccessThis) {
			await this.schemas.close();
		}
	};
	return mixin as Partial<ServiceSchema>;
}
