import type { Context, Service, ServiceBroker, ServiceSchema } from "moleculer";
import { DiscoveryMixin, type DiscoveryLocals, type DiscoverySettings } from "../mixins/discovery.mixin";
import { MetricsSamplerMixin } from "../mixins/metrics-sampler.mixin";
import { ResealMixin } from "../mixins/reseal.mixin";
import { RedisMixin, type RedisLocals, type RedisSettings } from "../mixins/redis.mixin";
import { AuditMixin, type AuditLocals, type AuditMethods, type AuditSettings } from "../mixins/audit.mixin";
import type { AuditAction } from "../lib/audit/audit-log";
import { MemoryAuditLog } from "../lib/audit/memory-audit-log";
import { RedisAuditLog } from "../lib/audit/redis-audit-log";
import { METRICS } from "../lib/metrics/names";
import { GLOBAL_TENANT, TenantScopeMixin, type TenantScopeMethods } from "../mixins/tenant-scope.mixin";
import { BUILTIN_TOOLS } from "../lib/builtin-tools";
import { DEFAULT_TIMEOUT_MS, pickDefinition } from "../lib/definition";
import { badRequest, conflict, forbidden, invalid, isConflict, isNameTaken, notFound } from "../lib/errors";
import { enforceDescriptionPolicy, policyOf, type DescriptionPolicies } from "../lib/description-policy";
import { definitionHash } from "../lib/definition-hash";
import { newId } from "../lib/ids";
import { maskSecrets, restoreSecrets, secretsNotGiven, upstreamOf } from "../lib/secrets";
import { mergePatch } from "../lib/merge-patch";
import { MemoryToolStore } from "../lib/store/memory-tool-store";
import { RedisToolStore } from "../lib/store/redis-tool-store";
import { secretBoxOf, secretsKeySettings, type SecretsKeySettings } from "../lib/secret-box";
import type { AuditHook, ToolStore } from "../lib/store/tool-store";
import { toolFor } from "../tools";
import { isReservedAction } from "../tools/moleculer-action";
import { paramsToJsonSchema } from "../lib/params-schema";
import { nextProbeDelay, type BackoffSettings, type ProbeSchedule } from "../lib/health/probe-schedule";
import { MemoryProbeSchedule } from "../lib/health/memory-probe-schedule";
import { RedisProbeSchedule } from "../lib/health/redis-probe-schedule";
import {
	TOOL_STATUSES,
	type CallerMeta,
	type JsonObject,
	type StoredTool,
	type ToolAnnotations,
	type ToolDefinition,
	type ToolHealth,
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
	/** Retries of an update that lost a race and carried no `expected_version`. */
	updateRetries: number;
	/** What flagged descriptions do, by default and per tenant (lib/description-policy.ts). */
	descriptionPolicies: DescriptionPolicies;
	health: HealthSettings;
}

/** Besides its own, the service reads what RedisMixin, DiscoveryMixin and AuditMixin set. */
export type RegistrySettings = RegistryOwnSettings & RedisSettings & DiscoverySettings & AuditSettings;

/** Re-probing of tools whose upstream does not answer. */
export interface HealthSettings extends BackoffSettings {
	/** How often each registry node looks for tools due for a probe. */
	sweepMs: number;
	/** A claimed probe that never reports (its node died) is claimed again after this. */
	claimMs: number;
}

interface RegistryMethods extends TenantScopeMethods, AuditMethods {
	audited(ctx: Context, action: AuditAction, outcome?: string): AuditHook;
	present(tool: StoredTool): StoredTool;
	checkDefinition(
		caller: Context | ServiceBroker,
		body: JsonObject,
		current?: StoredTool
	): Promise<ValidationReport>;
	admitDefinition(
		ctx: Context,
		tenantId: string,
		body: JsonObject,
		current?: StoredTool
	): Promise<ValidationReport>;
	offeredActionTools(): Map<string, OfferedTool>;
	syncActionTools(): Promise<void>;
	scheduleActionToolSync(): void;
	sampleMetrics(): Promise<void>;
	findVisible(tenantId: string, id: string): Promise<StoredTool>;
	queueProbe(caller: Context | ServiceBroker, tool: StoredTool): Promise<{ task_id: string } | null>;
	findWritable(tenantId: string, id: string): Promise<StoredTool>;
	withDefaults(definition: ToolDefinition): Pick<StoredTool, keyof ToolDefinition | "definition_hash">;
	seedBuiltins(): Promise<void>;
	changeDefinition(
		ctx: Ctx,
		id: string,
		expectedVersion: number | undefined,
		next: (current: StoredTool) => ToolDefinition,
		action: "tool.update" | "tool.rollback"
	): Promise<StoredTool>;
	nextHealth(previous: ToolHealth | undefined, probed: Pick<ToolHealth, "state" | "error">): ToolHealth;
	probeDue(): Promise<void>;
}

interface RegistryLocals extends RedisLocals, DiscoveryLocals, AuditLocals {
	/** The background re-encryption started with the service. */
	store: ToolStore;
	probeSchedule: ProbeSchedule;
	healthTimer: NodeJS.Timeout | null;
	/** Debounce timer and single-flight state of the action-tool sync. */
	syncTimer: NodeJS.Timeout | null;
	syncing: Promise<void> | null;
	syncAgain: boolean;
}

/** A tool some node offers through an action that declares `tool`. */
interface OfferedTool {
	definition: ToolDefinition;
	available: boolean;
}

interface ActionToolDeclaration {
	name?: string;
	description?: string;
	parameters?: JsonObject;
	tags?: string[];
	output_schema?: JsonObject;
	annotations?: ToolAnnotations;
}

type RegistryThis = Service<RegistrySettings> & RegistryMethods & RegistryLocals;
type Ctx<P = JsonObject> = Context<P, CallerMeta>;

const encodeCursor = (id: string) => Buffer.from(id).toString("base64url");
const decodeCursor = (cursor: string) => {
	const id = Buffer.from(cursor, "base64url").toString();
	if (!/^[0-9a-f-]{36}$/.test(id)) throw badRequest("cursor is invalid", "INVALID_CURSOR");
	return id;
};

/** Types whose definition is not enough: their API must answer a probe before they run. */
const needsProbe = (type: unknown) => typeof type === "string" && Boolean(toolFor(type)?.probe);

/** The definition fields of a stored tool (or of one of its versions). */
const definitionOf = (tool: StoredTool): ToolDefinition => ({
	name: tool.name,
	description: tool.description,
	type: tool.type,
	parameters: tool.parameters,
	config: tool.config,
	metadata: tool.metadata,
	permissions: tool.permissions,
	timeout_ms: tool.timeout_ms
});

/**
 * A tool stored before descriptions were required holds "": it may still be revalidated and changed
 * without giving one, so a blank description it already had is not held against it.
 */
const toleratedProblems = (problems: ValidationProblem[], body: JsonObject, current?: StoredTool) =>
	current?.description === "" && body.description === ""
		? problems.filter(problem => problem.field !== "description")
		: problems;

/** Health of a tool no probe has looked at (and of types that call no upstream). */
const UNKNOWN_HEALTH: ToolHealth = Object.freeze({ state: "unknown" }) as ToolHealth;

/** The catalog: tools per tenant plus global ones, versioned, with secrets masked in every read. */
const RegistryService: ServiceSchema<RegistryOwnSettings, RegistryMethods, RegistryLocals, RegistryThis> = {
	name: "registry",
	// Moleculer runs the last mixin's `created` first: discovery and audit come first so that they run after RedisMixin's.
	mixins: [
		DiscoveryMixin(),
		ResealMixin("tools"),
		AuditMixin(),
		RedisMixin(),
		TenantScopeMixin(),
		MetricsSamplerMixin({
			metrics: ["toolsRegistered", "toolsUnreachable", "descriptionFindings"],
			intervalMs: 15000
		})
	],

	settings: {
		secrets: secretsKeySettings(config()),
		$secureSettings: ["secrets"],
		defaultPageSize: 50,
		maxPageSize: 200,
		updateRetries: 5,
		// warn: findings are kept in `validation.warnings`; refuse: they make register/update a 422.
		descriptionPolicies: { default: config().descriptionPolicy, tenants: config().descriptionPolicyTenants },
		health: {
			// About a minute after the first failed probe, doubling up to an hour.
			initialMs: config().healthRecheckMs,
			maxMs: config().healthRecheckMaxMs,
			sweepMs: 5000,
			claimMs: 5 * 60000
		}
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

		update: {
			params: {
				id: { type: "string", max: 64 },
				expected_version: { type: "number", integer: true, positive: true, convert: true, optional: true }
			},
			handler(this: RegistryThis, ctx: Ctx<JsonObject & { id: string; expected_version?: number }>) {
				const patch = pickDefinition(ctx.params);
				return this.changeDefinition(
					ctx,
					ctx.params.id,
					ctx.params.expected_version,
					current => {
						const next: ToolDefinition = {
							...definitionOf(current),
							...patch,
							// config and metadata are JSON Merge Patches; a masked secret sent back keeps the stored one.
							config:
								patch.config === undefined
									? current.config
									: restoreSecrets(mergePatch(current.config, patch.config) as JsonObject, current.config),
							metadata:
								patch.metadata === undefined
									? current.metadata
									: (mergePatch(current.metadata, patch.metadata) as JsonObject)
						};
						// ...but only while the secrets still go where they went.
						if (upstreamOf(next.type, next.config ?? {}) !== upstreamOf(current.type, current.config)) {
							const missing = secretsNotGiven(next.config ?? {}, patch.config);
							if (missing.length)
								throw invalid(
									"The tool's upstream changed: give every secret again",
									missing.map(field => ({
										field,
										message: "must be given again, since the upstream changed"
									}))
								);
						}
						return next;
					},
					"tool.update"
				);
			}
		},

		versions: {
			params: { id: { type: "string", max: 64 } },
			async handler(this: RegistryThis, ctx: Ctx<{ id: string }>) {
				const tool = await this.findVisible(this.tenantOf(ctx), ctx.params.id);
				const versions = await this.store.versions(tool.id);
				return {
					items: versions.map(({ version, definition_hash, updated_at }) => ({
						version,
						definition_hash,
						updated_at
					}))
				};
			}
		},

		/** A new version with an earlier version's definition (secrets included, as they were stored). */
		rollback: {
			params: {
				id: { type: "string", max: 64 },
				version: { type: "number", integer: true, positive: true },
				expected_version: { type: "number", integer: true, positive: true, optional: true }
			},
			async handler(
				this: RegistryThis,
				ctx: Ctx<{ id: string; version: number; expected_version?: number }>
			) {
				const { id, version, expected_version } = ctx.params;
				const tool = await this.findWritable(this.tenantOf(ctx), id);
				const earlier = await this.store.getVersion(tool.id, version);
				if (!earlier) throw notFound("Tool version", `${tool.id}@${version}`);
				return this.changeDefinition(ctx, id, expected_version, () => definitionOf(earlier), "tool.rollback");
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
				const shown = this.present(updated);
				void ctx.broadcast("tool.updated", { tenant_id: updated.tenant_id, tool: shown });
				return shown;
			}
		},

		/**
		 * Records the health of a tool whose upstream is watched elsewhere (an `mcp` tool follows its
		 * source, which the sources service probes with backoff). Not a change of the definition.
		 */
		recordHealth: {
			visibility: "public",
			params: {
				id: { type: "string", max: 64 },
				health: {
					type: "object",
					props: {
						state: { type: "enum", values: ["unknown", "healthy", "unreachable"] },
						checked_at: { type: "string", max: 64, optional: true },
						next_check_at: { type: "string", max: 64, optional: true },
						error: { type: "string", max: 1000, optional: true }
					}
				}
			},
			async handler(this: RegistryThis, ctx: Ctx<{ id: string; health: ToolHealth }>) {
				const tool = await this.findWritable(this.tenantOf(ctx), ctx.params.id);
				const updated = await this.store.update(tool.id, stored => ({
					...stored,
					health: ctx.params.health
				}));
				if (!updated) throw notFound("Tool", ctx.params.id);
				const shown = this.present(updated);
				void ctx.broadcast("tool.updated", { tenant_id: updated.tenant_id, tool: shown });
				return shown;
			}
		},

		/**
		 * Records a functional validation (the executor's probe): an invalid report makes the tool
		 * `invalid`; otherwise it is `active` and its health says whether the upstream answered.
		 */
		recordValidation: {
			visibility: "public",
			params: {
				id: { type: "string", max: 64 },
				version: { type: "number", integer: true },
				report: { type: "object" },
				health: { type: "object", optional: true }
			},
			async handler(
				this: RegistryThis,
				ctx: Ctx<{
					id: string;
					version: number;
					report: ValidationReport;
					health?: Pick<ToolHealth, "state" | "error">;
				}>
			) {
				const { id, version, report } = ctx.params;
				const probed = report.valid ? (ctx.params.health ?? UNKNOWN_HEALTH) : UNKNOWN_HEALTH;
				// The trail gets the probe that follows a change, not every health re-check of an active tool.
				let decides = false;
				const audit = this.audited(ctx, "tool.validate", report.valid ? "valid" : "invalid");
				// A report about an older version is stale: the newer version has its own probe queued.
				const updated = await this.store.update(
					id,
					stored => {
						if (
							stored.version !== version ||
							(stored.status !== "pending_validation" && stored.status !== "active")
						)
							return stored;
						decides = stored.status === "pending_validation" || !report.valid;
						return {
							...stored,
							status: report.valid ? "active" : "invalid",
							// The probe says nothing about descriptions: the definition check's findings stay visible.
							validation: stored.validation?.warnings
								? { ...report, warnings: stored.validation.warnings }
								: report,
							health: this.nextHealth(stored.health, probed)
						};
					},
					undefined,
					tool => (decides ? audit(tool) : null)
				);
				if (
					!updated ||
					(updated.validation !== report && updated.validation?.checked_at !== report.checked_at)
				)
					return { recorded: false };
				const { next_check_at } = updated.health;
				if (next_check_at) await this.probeSchedule.schedule(id, Date.parse(next_check_at));
				else await this.probeSchedule.remove(id);
				void ctx.broadcast("tool.validation_completed", {
					tenant_id: updated.tenant_id,
					tool: this.present(updated)
				});
				return { recorded: true };
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

		/** Queues the tool's probe; resolves the task id, or null when no executor can take it now. */
		async queueProbe(this: RegistryThis, caller: Context | ServiceBroker, tool: StoredTool) {
			try {
				return await caller.call<{ task_id: string }, JsonObject>(
					"executor.queueValidation",
					{ tool_id: tool.id, version: tool.version },
					{ meta: { tenant_id: tool.tenant_id } }
				);
			} catch (err) {
				this.logger.warn(`Probe of tool '${tool.id}' not queued; it stays pending_validation`, err);
				return null;
			}
		},

		/**
		 * Stores `next(current)` as the tool's new version, validated, and probes it again when its
		 * endpoint changed.
		 */
		async changeDefinition(this: RegistryThis, ctx, id, expected_version, next, action) {
			const tenantId = this.tenantOf(ctx);
			for (let attempt = 0; ; attempt++) {
				const current = await this.findWritable(tenantId, id);
				const merged = next(current);
				const report = await this.admitDefinition(ctx, tenantId, { ...ctx.params, ...merged }, current);
				try {
					// A changed endpoint must prove itself again before it runs.
					const reprobe =
						needsProbe(merged.type) &&
						JSON.stringify([merged.type, merged.config]) !== JSON.stringify([current.type, current.config]);
					const updated = await this.store.update(
						id,
						stored => ({
							...stored,
							...merged,
							definition_hash: definitionHash(merged as Parameters<typeof definitionHash>[0]),
							version: stored.version + 1,
							...(reprobe && stored.status !== "disabled" ? { status: "pending_validation" as const } : {}),
							validation: report,
							updated_at: new Date().toISOString()
						}),
						expected_version ?? current.version,
						this.audited(ctx, action)
					);
					if (!updated) throw notFound("Tool", id);
					const shown = this.present(updated);
					void ctx.broadcast("tool.updated", { tenant_id: tenantId, tool: shown });
					if (updated.status === "pending_validation") await this.queueProbe(ctx, updated);
					return shown;
				} catch (err) {
					// Without an expected version the caller asked for "latest wins": a race with
					// another writer is retried on the new state instead of surfacing as 409.
					const lostRace = isConflict(err) && !isNameTaken(err) && expected_version === undefined;
					if (!lostRace || attempt >= this.settings.updateRetries) throw err;
				}
			}
		},

		/** The health a probe result leads to; an unreachable upstream is due again with backoff. */
		nextHealth(this: RegistryThis, previous, probed): ToolHealth {
			const now = Date.now();
			const checked_at = new Date(now).toISOString();
			if (probed.state !== "unreachable") return { state: probed.state, checked_at };
			const lastDelay =
				previous?.state === "unreachable" && previous.next_check_at && previous.checked_at
					? Date.parse(previous.next_check_at) - Date.parse(previous.checked_at)
					: undefined;
			const delay = nextProbeDelay(lastDelay, this.settings.health);
			return {
				state: "unreachable",
				checked_at,
				next_check_at: new Date(now + delay).toISOString(),
				...(probed.error ? { error: probed.error } : {})
			};
		},

		/** Queues the probes that are due; tools no longer unreachable leave the schedule. */
		async probeDue(this: RegistryThis) {
			const { claimMs } = this.settings.health;
			for (const id of await this.probeSchedule.claimDue(Date.now(), claimMs, 100)) {
				const tool = await this.store.get(id);
				if (tool?.status === "active" && tool.health?.state === "unreachable")
					await this.queueProbe(this.broker, tool);
				else await this.probeSchedule.remove(id);
			}
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

		async seedBuiltins(this: RegistryThis) {
			const now = new Date().toISOString();
			for (const definition of BUILTIN_TOOLS) {
				if (await this.store.findByName(GLOBAL_TENANT, definition.name)) continue;
				const tool: StoredTool = {
					id: newId(),
					tenant_id: GLOBAL_TENANT,
					...this.withDefaults(definition),
					version: 1,
					status: "active",
					health: UNKNOWN_HEALTH,
					created_at: now,
					updated_at: now
				};
				// Several registry nodes may seed at once: the name index lets exactly one win.
				await this.store.create(tool).then(
					created =>
						this.broker.broadcast("tool.registered", {
							tenant_id: GLOBAL_TENANT,
							tool: this.present(created)
						}),
					err => {
						if (!isNameTaken(err)) throw err;
					}
				);
			}
		},

		offeredActionTools(this: RegistryThis): Map<string, OfferedTool> {
			const offered = new Map<string, OfferedTool>();
			for (const item of this.broker.registry.getActionList({ skipInternal: true })) {
				const action = item.action as { tool?: ActionToolDeclaration; params?: unknown } | undefined;
				if (!action?.tool || isReservedAction(item.name)) continue;
				const declared = action.tool;
				const name = declared.name ?? item.name.replace(/\./g, "_");
				offered.set(name, {
					available: item.available,
					definition: {
						name,
						type: "moleculer_action",
						// The declaration should describe the tool; without one agents still get what it calls.
						description: declared.description?.trim() || `Calls the Moleculer action ${item.name}`,
						parameters: declared.parameters ?? paramsToJsonSchema(action.params),
						config: { action: item.name },
						metadata: { tags: declared.tags ?? [], auto_registered: true },
						output_schema: declared.output_schema,
						annotations: declared.annotations
					}
				});
			}
			return offered;
		},

		/**
		 * Makes the global catalog match the actions that declare `tool`: new ones registered,
		 * changed declarations updated, and tools whose action no node offers marked `disabled`.
		 * Every registry node may run it; the store's atomic writes make concurrent runs converge.
		 */
		async syncActionTools(this: RegistryThis) {
			const offered = this.offeredActionTools();
			const now = () => new Date().toISOString();
			for (const { definition, available } of offered.values()) {
				const status: ToolStatus = available ? "active" : "disabled";
				const existing = await this.store.findByName(GLOBAL_TENANT, definition.name);
				if (!existing) {
					const report = await this.checkDefinition(this.broker, definition as unknown as JsonObject);
					if (!report.valid) {
						this.logger.warn(`Action tool '${definition.name}' is invalid and not registered`, report.errors);
						continue;
					}
					const tool: StoredTool = {
						id: newId(),
						tenant_id: GLOBAL_TENANT,
						...this.withDefaults(definition),
						version: 1,
						status,
						health: UNKNOWN_HEALTH,
						validation: report,
						created_at: now(),
						updated_at: now()
					};
					await this.store.create(tool).then(
						created =>
							this.broker.broadcast("tool.registered", {
								tenant_id: GLOBAL_TENANT,
								tool: this.present(created)
							}),
						err => {
							if (!isNameTaken(err)) throw err;
						}
					);
					continue;
				}
				if (existing.metadata.auto_registered !== true) {
					this.logger.warn(
						`Action tool '${definition.name}' clashes with a global tool of that name; skipped`
					);
					continue;
				}
				const wanted = this.withDefaults(definition);
				const changed = (tool: StoredTool) =>
					tool.definition_hash !== wanted.definition_hash ||
					JSON.stringify(tool.metadata) !== JSON.stringify(wanted.metadata);
				if (!changed(existing) && existing.status === status) continue;
				const updated = await this.store.update(existing.id, current => ({
					...current,
					...(changed(current) ? { ...wanted, version: current.version + 1 } : {}),
					status,
					updated_at: now()
				}));
				if (updated)
					void this.broker.broadcast("tool.updated", {
						tenant_id: GLOBAL_TENANT,
						tool: this.present(updated)
					});
			}
			// Auto-registered tools whose action is gone from every node.
			let after: string | undefined;
			do {
				const page = await this.store.list(
					[GLOBAL_TENANT],
					{ type: "moleculer_action", status: "active" },
					200,
					after
				);
				for (const tool of page.items) {
					if (tool.metadata.auto_registered !== true || offered.has(tool.name)) continue;
					const updated = await this.store.update(tool.id, current => ({
						...current,
						status: "disabled",
						updated_at: now()
					}));
					if (updated)
						void this.broker.broadcast("tool.updated", {
							tenant_id: GLOBAL_TENANT,
							tool: this.present(updated)
						});
				}
				after = page.last_id ?? undefined;
			} while (after);
		},

		async sampleMetrics(this: RegistryThis) {
			for (const [tenant, count] of Object.entries(await this.store.countByTenant()))
				this.broker.metrics.set(METRICS.toolsRegistered, count, { tenant });
			this.broker.metrics.set(METRICS.toolsUnreachable, await this.probeSchedule.size());
		},

		/** Coalesces bursts of topology changes into one sync, never two at once. */
		scheduleActionToolSync(this: RegistryThis) {
			if (this.syncTimer) clearTimeout(this.syncTimer);
			this.syncTimer = setTimeout(() => {
				this.syncTimer = null;
				if (this.syncing) {
					this.syncAgain = true;
					return;
				}
				this.syncing = this.syncActionTools()
					.catch(err => this.logger.warn("Action tool sync failed; it runs again on the next change", err))
					.finally(() => {
						this.syncing = null;
						if (this.syncAgain) {
							this.syncAgain = false;
							this.scheduleActionToolSync();
						}
					});
			}, 100);
		}
	},

	events: {
		// Local event on every node whenever any node's services change.
		"$services.changed"(this: RegistryThis) {
			this.scheduleActionToolSync();
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
		this.probeSchedule = this.redis
			? new RedisProbeSchedule(this.redis, this.settings.redisPrefix)
			: new MemoryProbeSchedule();
	},

	async started(this: RegistryThis) {
		this.syncTimer = null;
		this.syncing = null;
		this.syncAgain = false;
		await this.seedBuiltins();
		this.scheduleActionToolSync();
		this.healthTimer = setInterval(
			() => void this.probeDue().catch(err => this.logger.warn("Queueing due probes failed", err)),
			this.settings.health.sweepMs
		);
	},

	async stopped(this: RegistryThis) {
		if (this.healthTimer) clearInterval(this.healthTimer);
		if (this.syncTimer) clearTimeout(this.syncTimer);
		await this.syncing;
	}
};

export default RegistryService;
