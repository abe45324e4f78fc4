import type { Context, Service, ServiceBroker, ServiceSchema } from "moleculer";
import { DiscoveryMixin, type DiscoveryLocals, type DiscoverySettings } from "../mixins/discovery.mixin";
import { MetricsSamplerMixin } from "../mixins/metrics-sampler.mixin";
import type { CatalogHost } from "../mixins/catalog-host";
import { GlobalToolsMixin } from "../mixins/global-tools.mixin";
import { ToolVersionsMixin, type ToolVersionsSettings } from "../mixins/tool-versions.mixin";
import {
	ToolHealthMixin,
	type ToolHealthLocals,
	type ToolHealthMethods,
	type ToolHealthSettings
} from "../mixins/tool-health.mixin";
import { UNKNOWN_HEALTH } from "../lib/health/probe-schedule";
import { ResealMixin } from "../mixins/reseal.mixin";
import { RedisMixin, type RedisLocals, type RedisSettings } from "../mixins/redis.mixin";
import { AuditMixin, type AuditLocals, type AuditMethods, type AuditSettings } from "../mixins/audit.mixin";
import type { AuditAction } from "../lib/audit/audit-log";
import { MemoryAuditLog } from "../lib/audit/memory-audit-log";
import { RedisAuditLog } from "../lib/audit/redis-audit-log";
import { METRICS } from "../lib/metrics/names";
import { GLOBAL_TENANT, TenantScopeMixin, type TenantScopeMethods } from "../mixins/tenant-scope.mixin";
import { DEFAULT_TIMEOUT_MS, pickDefinition } from "../lib/definition";
import { badRequest, conflict, forbidden, invalid, notFound } from "../lib/errors";
import { enforceDescriptionPolicy, policyOf, type DescriptionPolicies } from "../lib/description-policy";
import { definitionHash } from "../lib/definition-hash";
import { newId } from "../lib/ids";
import { maskSecrets } from "../lib/secrets";
import { MemoryToolStore } from "../lib/store/memory-tool-store";
import { RedisToolStore } from "../lib/store/redis-tool-store";
import { secretBoxOf, secretsKeySettings, type SecretsKeySettings } from "../lib/secret-box";
import type { AuditHook } from "../lib/store/tool-store";
import { needsProbe, toolFor } from "../tools";
import {
	TOOL_STATUSES,
	type CallerMeta,
	type JsonObject,
	type StoredTool,
	type ToolDefinition,
	type ToolStatus,
	type ValidationProblem,
	type ValidationReport
} from "../types/wire";
import { config } from "../lib/config";
import { ANY_AGENT } from "../lib/tenancy";

interface RegistryOwnSettings {
	/** SECRETS_KEY and the earlier keys: tool secrets are sealed with them in Redis. */
	secrets: SecretsKeySettings;
	$secureSettings: string[];
	/** Page size of `registry.list` when the caller gives none. */
	defaultPageSize: number;
	/** Larger page sizes are clamped to this. */
	maxPageSize: number;
	/** What flagged descriptions do, by default and per tenant (lib/description-policy.ts). */
	descriptionPolicies: DescriptionPolicies;
}

/** Besides its own, the service reads what its mixins set. */
export type RegistrySettings = RegistryOwnSettings &
	ToolVersionsSettings &
	ToolHealthSettings &
	RedisSettings &
	DiscoverySettings &
	AuditSettings;

interface RegistryMethods extends CatalogHost, TenantScopeMethods, AuditMethods, ToolHealthMethods {
	sampleMetrics(): Promise<void>;
}

type RegistryLocals = RedisLocals & DiscoveryLocals & AuditLocals & ToolHealthLocals;

type RegistryThis = Service<RegistrySettings> & RegistryMethods & RegistryLocals;
type Ctx<P = JsonObject> = Context<P, CallerMeta>;

const encodeCursor = (id: string) => Buffer.from(id).toString("base64url");
const decodeCursor = (cursor: string) => {
	const id = Buffer.from(cursor, "base64url").toString();
	if (!/^[0-9a-f-]{36}$/.test(id)) throw badRequest("cursor is invalid", "INVALID_CURSOR");
	return id;
};

/**
 * A tool stored before descriptions were required holds "": it may still be revalidated and changed
 * without giving one, so a blank description it already had is not held against it.
 */
const toleratedProblems = (problems: ValidationProblem[], body: JsonObject, current?: StoredTool) =>
	current?.description === "" && body.description === ""
		? problems.filter(problem => problem.field !== "description")
		: problems;

/** The catalog: tools per tenant plus global ones, versioned, with secrets masked in every read. */
const RegistryService: ServiceSchema<RegistryOwnSettings, RegistryMethods, RegistryLocals, RegistryThis> = {
	name: "registry",
	// Moleculer runs the last mixin's `created` first: discovery and audit come first so that they run after RedisMixin's.
	mixins: [
		GlobalToolsMixin(),
		ToolVersionsMixin(),
		ToolHealthMixin(),
		DiscoveryMixin(),
		ResealMixin("tools"),
		AuditMixin(),
		RedisMixin(),
		TenantScopeMixin(),
		MetricsSamplerMixin({
			metrics: ["toolsRegistered", "toolsUnreachable", "vectorsPending", "descriptionFindings"],
			intervalMs: 15000
		})
	],

	settings: {
		secrets: secretsKeySettings(config()),
		$secureSettings: ["secrets"],
		defaultPageSize: 50,
		maxPageSize: 200,
		// warn: findings are kept in `validation.warnings`; refuse: they make register/update a 422.
		descriptionPolicies: { default: config().descriptionPolicy, tenants: config().descriptionPolicyTenants }
	},

	actions: {
		register: {
			// The body is tenant data checked by `validator.validate` (ajv), not by fastest-validator.
			params: { $$root: true, type: "object" },
			async handler(this: RegistryThis, ctx: Ctx) {
				const tenantId = this.tenantOf(ctx);
				const report = await this.admitDefinition(ctx, tenantId, ctx.params);
				const now = new Date().toISOString();
				const tool: StoredTool = {
					id: newId(),
					tenant_id: tenantId,
					...this.withDefaults(pickDefinition(ctx.params) as ToolDefinition),
					version: 1,
					status: needsProbe(ctx.params.type) ? "pending_validation" : "active",
					health: UNKNOWN_HEALTH,
					validation: report,
					created_at: now,
					updated_at: now
				};
				await this.store.create(tool, this.audited(ctx, "tool.register"));
				const shown = this.present(tool);
				void ctx.broadcast("tool.registered", { tenant_id: tenantId, tool: shown });
				if (tool.status === "pending_validation") await this.queueProbe(ctx, tool);
				return shown;
			}
		},

		get: {
			params: {
				id: { type: "string", max: 64 },
				version: { type: "number", integer: true, positive: true, convert: true, optional: true }
			},
			async handler(this: RegistryThis, ctx: Ctx<{ id: string; version?: number }>) {
				const tool = await this.findVisible(this.tenantOf(ctx), ctx.params.id);
				if (ctx.params.version === undefined || ctx.params.version === tool.version)
					return this.present(tool);
				const earlier = await this.store.getVersion(tool.id, ctx.params.version);
				if (!earlier) throw notFound("Tool version", `${tool.id}@${ctx.params.version}`);
				return this.present(earlier);
			}
		},

		list: {
			params: {
				type: { type: "string", max: 64, optional: true },
				tag: { type: "string", max: 64, optional: true },
				status: { type: "enum", values: TOOL_STATUSES, optional: true },
				limit: { type: "number", integer: true, positive: true, convert: true, optional: true },
				cursor: { type: "string", max: 200, optional: true }
			},
			async handler(
				this: RegistryThis,
				ctx: Ctx<{ type?: string; tag?: string; status?: ToolStatus; limit?: number; cursor?: string }>
			) {
				const tenantId = this.tenantOf(ctx);
				const { type, tag, status, cursor } = ctx.params;
				const limit = Math.min(ctx.params.limit ?? this.settings.defaultPageSize, this.settings.maxPageSize);
				const tenants = tenantId === GLOBAL_TENANT ? [GLOBAL_TENANT] : [tenantId, GLOBAL_TENANT];
				const page = await this.store.list(
					tenants,
					{ type, tag, status },
					limit,
					cursor ? decodeCursor(cursor) : undefined
				);
				return {
					items: page.items.map(tool => this.present(tool)),
					next_cursor: page.last_id ? encodeCursor(page.last_id) : null
				};
			}
		},

		remove: {
			params: { id: { type: "string", max: 64 } },
			async handler(this: RegistryThis, ctx: Ctx<{ id: string }>) {
				const tenantId = this.tenantOf(ctx);
				await this.findWritable(tenantId, ctx.params.id);
				const removed = await this.store.remove(ctx.params.id, this.audited(ctx, "tool.delete"));
				if (!removed) throw notFound("Tool", ctx.params.id);
				await this.probeSchedule.remove(removed.id);
				void ctx.broadcast("tool.deleted", { tenant_id: tenantId, tool: this.present(removed) });
				return null;
			}
		},

		revalidate: {
			params: { id: { type: "string", max: 64 } },
			async handler(this: RegistryThis, ctx: Ctx<{ id: string }>) {
				const tenantId = this.tenantOf(ctx);
				const current = await this.findWritable(tenantId, ctx.params.id);
				const report = await this.checkDefinition(ctx, { ...current }, current);
				const probe = report.valid && needsProbe(current.type);
				const status: ToolStatus = !report.valid ? "invalid" : probe ? "pending_validation" : "active";
				// Validation is not a change of the definition: the version stays.
				const updated = await this.store.update(
					current.id,
					stored => ({
						...stored,
						status: stored.status === "disabled" ? "disabled" : status,
						validation: report
					}),
					undefined,
					this.audited(ctx, "tool.validate", report.valid ? "valid" : "invalid")
				);
				if (!updated) throw notFound("Tool", ctx.params.id);
				if (probe && updated.status === "pending_validation") {
					const queued = await this.queueProbe(ctx, updated);
					if (queued) {
						// moleculer-web convention: the functional part runs in the tool_validation queue.
						(ctx.meta as Record<string, unknown>).$statusCode = 202;
						return queued;
					}
				}
				void ctx.broadcast("tool.validation_completed", { tenant_id: tenantId, tool: this.present(updated) });
				return report;
			}
		},

		/**
		 * The switch of operators (REPL `disable` / `enable`) and of the console (`PUT /tools/{id}/status`):
		 * a disabled tool is neither discovered nor run.
		 */
		setStatus: {
			params: { id: { type: "string", max: 64 }, status: { type: "enum", values: ["active", "disabled"] } },
			async handler(this: RegistryThis, ctx: Ctx<{ id: string; status: "active" | "disabled" }>) {
				const tool = await this.findWritable(this.tenantOf(ctx), ctx.params.id);
				// Enabling undoes a disable; it never lets an invalid or unvalidated tool skip validation.
				if (ctx.params.status === "active" && !["active", "disabled"].includes(tool.status))
					throw conflict(`Only a disabled tool can be enabled; this one is ${tool.status}`);
				const updated = await this.store.update(
					tool.id,
					stored => ({
						...stored,
						status: ctx.params.status,
						updated_at: new Date().toISOString()
					}),
					undefined,
					this.audited(ctx, ctx.params.status === "disabled" ? "tool.disable" : "tool.enable")
				);
				if (!updated) throw notFound("Tool", ctx.params.id);
				return this.announceUpdated(ctx, updated);
			}
		},

		/** The stored tool with its secrets, for the executor. Not reachable through the gateway. */
		resolve: {
			visibility: "public",
			params: {
				tool_id: { type: "string", max: 64, optional: true },
				tool_name: { type: "string", max: 64, optional: true }
			},
			async handler(this: RegistryThis, ctx: Ctx<{ tool_id?: string; tool_name?: string }>) {
				const tenantId = this.tenantOf(ctx);
				const { tool_id, tool_name } = ctx.params;
				if (tool_id) return this.findVisible(tenantId, tool_id);
				if (!tool_name) throw badRequest("tool_id or tool_name is required", "TOOL_REQUIRED");
				const tool =
					(await this.store.findByName(tenantId, tool_name)) ??
					(await this.store.findByName(GLOBAL_TENANT, tool_name));
				if (!tool) throw notFound("Tool", tool_name);
				return tool;
			}
		}
	},

	methods: {
		/** The audit entry of a write to one tool, appended by the store in the same step. */
		audited(this: RegistryThis, ctx: Context, action: AuditAction, outcome = "success"): AuditHook {
			return tool =>
				this.auditDraft(ctx, tool.tenant_id, action, `tool:${tool.id}`, outcome, {
					definition_hash: tool.definition_hash,
					details: { name: tool.name, version: tool.version, status: tool.status }
				});
		},

		present(tool: StoredTool): StoredTool {
			return { ...tool, config: maskSecrets(tool.config), health: tool.health ?? UNKNOWN_HEALTH };
		},

		announceUpdated(this: RegistryThis, caller: Pick<Context, "broadcast">, tool: StoredTool): StoredTool {
			const shown = this.present(tool);
			void caller.broadcast("tool.updated", { tenant_id: tool.tenant_id, tool: shown });
			return shown;
		},

		async checkDefinition(
			caller: Context | ServiceBroker,
			body: JsonObject,
			current?: StoredTool
		): Promise<ValidationReport> {
			const answer = await caller.call<Pick<ValidationReport, "valid" | "errors" | "warnings">, JsonObject>(
				"validator.validate",
				body
			);
			const errors = toleratedProblems(answer.errors, body, current);
			const report: ValidationReport = {
				valid: errors.length === 0,
				errors,
				kind: "definition",
				checked_at: new Date().toISOString()
			};
			if (answer.warnings?.length) report.warnings = answer.warnings;
			return report;
		},

		/** The report of a definition about to be stored; throws when it is invalid or its tenant refuses its findings. */
		async admitDefinition(this: RegistryThis, ctx, tenantId, body, current) {
			const report = await this.checkDefinition(ctx, body, current);
			if (!report.valid) throw invalid("Tool definition is invalid", report.errors);
			if (report.warnings && this.broker.isMetricsEnabled())
				for (const { rule } of report.warnings)
					this.broker.metrics.increment(METRICS.descriptionFindings, { tenant: tenantId, rule });
			enforceDescriptionPolicy(policyOf(this.settings.descriptionPolicies, tenantId), report);
			return report;
		},

		async findVisible(this: RegistryThis, tenantId: string, id: string): Promise<StoredTool> {
			const tool = await this.store.get(id);
			// Another tenant's tool is indistinguishable from a missing one.
			if (!tool || !this.isVisibleTo(tool, tenantId)) throw notFound("Tool", id);
			return tool;
		},

		async findWritable(this: RegistryThis, tenantId: string, id: string): Promise<StoredTool> {
			const tool = await this.findVisible(tenantId, id);
			if (tool.tenant_id !== tenantId) throw forbidden("Global tools are read-only for tenants");
			return tool;
		},

		withDefaults(definition: ToolDefinition): Pick<StoredTool, keyof ToolDefinition | "definition_hash"> {
			const complete = {
				name: definition.name,
				description: definition.description,
				type: definition.type,
				parameters: definition.parameters ?? toolFor(definition.type)!.parameters,
				config: definition.config ?? {},
				metadata: definition.metadata ?? {},
				permissions: definition.permissions ?? { agents: [ANY_AGENT] },
				timeout_ms: definition.timeout_ms ?? DEFAULT_TIMEOUT_MS,
				output_schema: definition.output_schema,
				output_validation: definition.output_validation,
				annotations: definition.annotations
			};
			// Not `{ ...complete, definition_hash }`: once optimised, V8 gives each such object a hidden class of its own.
			return Object.assign(complete, { definition_hash: definitionHash(complete) });
		},

		async sampleMetrics(this: RegistryThis) {
			for (const [tenant, count] of Object.entries(await this.store.countByTenant()))
				this.broker.metrics.set(METRICS.toolsRegistered, count, { tenant });
			this.broker.metrics.set(METRICS.toolsUnreachable, await this.probeSchedule.size());
			this.broker.metrics.set(METRICS.vectorsPending, this.toolVectors?.pending ?? 0);
		}
	},

	created(this: RegistryThis) {
		const trail = this.auditLog;
		// Secrets are encrypted where they rest: in Redis. The embedded default keeps nothing on disk.
		this.store = this.redis
			? new RedisToolStore(
					this.redis,
					this.settings.redisPrefix,
					trail instanceof RedisAuditLog ? trail : undefined,
					secretBoxOf(this.settings.secrets, message => this.logger.warn(message))
				)
			: new MemoryToolStore(trail instanceof MemoryAuditLog ? trail : undefined);
	}
};

export default RegistryService;
