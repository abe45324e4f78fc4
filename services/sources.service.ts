import type { Context, Service, ServiceSchema } from "moleculer";
import { MetricsSamplerMixin } from "../mixins/metrics-sampler.mixin";
import { RedisMixin, type RedisLocals, type RedisSettings } from "../mixins/redis.mixin";
import { secretBoxOf, secretsKeySettings, type SecretsKeySettings } from "../lib/secret-box";
import { ResealMixin } from "../mixins/reseal.mixin";
import {
	SourceRefreshMixin,
	type SourceRefreshLocals,
	type SourceRefreshMethods,
	type SourceRefreshSettings
} from "../mixins/source-refresh.mixin";
import { AuditMixin, type AuditLocals, type AuditMethods, type AuditSettings } from "../mixins/audit.mixin";
import { GLOBAL_TENANT, TenantScopeMixin, type TenantScopeMethods } from "../mixins/tenant-scope.mixin";
import { config } from "../lib/config";
import { forbidden, invalid, notFound } from "../lib/errors";
import { maskSecrets } from "../lib/secrets";
import { MemorySourceStore } from "../lib/store/memory-source-store";
import { RedisSourceStore } from "../lib/store/redis-source-store";
import { McpConnection, type RemoteCallOutcome } from "../lib/sources/mcp-connection";
import type { OfferedTool } from "../lib/sources/reconcile";
import { SourceUnavailable } from "../lib/sources/offered-tools";
import { newSource, type SourceRequest } from "../lib/sources/new-source";
import { SOURCE_NAME_PATTERN } from "../lib/sources/tool-names";
import { ToolGuards, type ToolGuardOptions } from "../lib/tool-guards";
import { ToolFailure } from "../tools/base";
import type { CallerMeta, JsonObject, ToolSource } from "../types/wire";

interface SourcesOwnSettings extends SourceRefreshSettings {
	/** SECRETS_KEY and the earlier keys: header values are sealed with them in Redis. */
	secrets: SecretsKeySettings;
	$secureSettings: string[];
	/** How often due refreshes and probes are looked for. */
	tickMs: number;
	/** Circuit breaker and concurrency bound of each MCP source's pooled client. */
	guards: ToolGuardOptions;
}

/** Besides its own, the service reads what RedisMixin and AuditMixin set. */
export type SourcesSettings = SourcesOwnSettings & RedisSettings & AuditSettings;

interface SourcesMethods extends TenantScopeMethods, AuditMethods, SourceRefreshMethods {
	present(source: ToolSource): JsonObject;
	findVisible(tenantId: string, id: string): Promise<ToolSource>;
	findWritable(tenantId: string, id: string): Promise<ToolSource>;
	connectionOf(source: Pick<ToolSource, "id" | "url" | "headers">): McpConnection;
	closeConnection(id: string): Promise<void>;
}

interface SourcesLocals extends RedisLocals, AuditLocals, SourceRefreshLocals {
	connections: Map<string, McpConnection>;
	guards: ToolGuards;
	ticker: NodeJS.Timeout | null;
	ticking: Promise<void> | null;
	/** Set when the service stops: a registry that appears afterwards starts nothing here. */
	closed: boolean;
}

type SourcesThis = Service<SourcesSettings> & SourcesMethods & SourcesLocals;
type Ctx<P = JsonObject> = Context<P, CallerMeta>;

type CreateParams = SourceRequest & { dry_run?: boolean };

const HTTP_URL = { type: "url", max: 2048, optional: true };
/** An OpenAPI document given inline: a JSON object, or a JSON or YAML string. */
const SPEC = {
	type: "multi",
	rules: [{ type: "object" }, { type: "string", max: 5 * 1024 * 1024 }],
	optional: true
};

/**
 * Tool sources: remote MCP servers and OpenAPI documents whose tools are kept in the catalog.
 * The registry stores the tools; this service decides which exist, keeps them current (refresh on
 * demand, on `tools/list_changed`, periodically; unreachable sources probed with backoff) and holds
 * the pooled client through which `mcp` tools call their server.
 */
const SourcesService: ServiceSchema<SourcesOwnSettings, SourcesMethods, SourcesLocals, SourcesThis> = {
	name: "sources",
	mixins: [
		ResealMixin("sources"),
		SourceRefreshMixin(),
		AuditMixin(),
		RedisMixin(),
		TenantScopeMixin(),
		MetricsSamplerMixin({ metrics: ["sourceHealthy", "sourceTools", "sourceLastRefresh"], intervalMs: 15000 })
	],

	settings: {
		secrets: secretsKeySettings(config()),
		$secureSettings: ["secrets"],
		outboundAllowHosts: config().outboundAllowHosts,
		// Ten minutes: list_changed notifications carry most changes at once.
		refreshIntervalMs: 10 * 60 * 1000,
		// One minute doubling to one hour, as for unreachable tools.
		probeBaseMs: 60 * 1000,
		probeMaxMs: 60 * 60 * 1000,
		tickMs: 5000,
		connectTimeoutMs: 10000,
		maxSpecBytes: 5 * 1024 * 1024,
		guards: {
			errorThresholdPercentage: 50,
			volumeThreshold: 10,
			rollingCountTimeout: 10000,
			resetTimeout: 15000,
			// Calls in flight to one MCP server from this node; more fail at once with upstream_error.
			capacity: 32,
			maxGuards: 10000
		}
	},

	actions: {
		create: {
			params: {
				$$strict: true,
				type: { type: "enum", values: ["mcp", "openapi"] },
				name: { type: "string", pattern: SOURCE_NAME_PATTERN },
				url: HTTP_URL,
				spec: SPEC,
				base_url: HTTP_URL,
				headers: {
					type: "record",
					key: { type: "string", max: 256 },
					value: { type: "string", max: 4096 },
					optional: true
				},
				dry_run: { type: "boolean", convert: true, optional: true }
			},
			async handler(this: SourcesThis, ctx: Ctx<CreateParams>) {
				const tenantId = this.tenantOf(ctx);
				const { type, dry_run, ...request } = ctx.params;
				const source = newSource(tenantId, { type, ...request }, this.settings.refreshIntervalMs);
				// Refused addresses and broken documents are the caller's to fix: nothing is stored.
				// An MCP server that does not answer yet is stored, unreachable, and probed with backoff.
				let offered: OfferedTool[] | undefined;
				try {
					offered = await this.offerOf(source);
				} catch (err) {
					if (!(err instanceof SourceUnavailable) || dry_run || type !== "mcp") {
						await this.closeConnection(source.id);
						throw err;
					}
					offered = undefined;
				}
				if (dry_run) {
					await this.closeConnection(source.id);
					(ctx.meta as Record<string, unknown>).$statusCode = 200;
					return {
						tools: offered!.map(({ definition }) => ({
							...definition,
							config: maskSecrets(definition.config ?? {})
						}))
					};
				}
				await this.store.create(source).catch(async err => {
					await this.closeConnection(source.id);
					throw err;
				});
				await this.recordAudit(
					this.auditDraft(ctx, tenantId, "source.create", `source:${source.id}`, "success", {
						details: { name: source.name, type: source.type }
					})
				);
				void ctx.broadcast("source.created", { tenant_id: tenantId, source_id: source.id });
				const { source: refreshed, summary } = await this.refresh(source.id, offered);
				return { ...this.present(refreshed), ...(summary ? { changes: summary } : {}) };
			}
		},

		list: {
			async handler(this: SourcesThis, ctx: Ctx) {
				const tenantId = this.tenantOf(ctx);
				const tenants = tenantId === GLOBAL_TENANT ? [GLOBAL_TENANT] : [tenantId, GLOBAL_TENANT];
				const sources = (await Promise.all(tenants.map(tenant => this.store.list(tenant)))).flat();
				return { items: sources.map(source => this.present(source)) };
			}
		},

		get: {
			params: { id: { type: "string", max: 64 } },
			async handler(this: SourcesThis, ctx: Ctx<{ id: string }>) {
				return this.present(await this.findVisible(this.tenantOf(ctx), ctx.params.id));
			}
		},

		refresh: {
			// `spec`: a new version of a document given inline, imported in place of the stored one.
			params: { id: { type: "string", max: 64 }, spec: SPEC },
			async handler(this: SourcesThis, ctx: Ctx<{ id: string; spec?: JsonObject | string }>) {
				const source = await this.findWritable(this.tenantOf(ctx), ctx.params.id);
				const { spec } = ctx.params;
				let listed: OfferedTool[] | undefined;
				if (spec !== undefined) {
					if (source.spec === undefined)
						throw invalid("Only an OpenAPI source given inline takes a new spec", [
							{ field: "spec", message: "is not allowed: the source is read from its url" }
						]);
					// A document that cannot be imported is refused before anything changes.
					listed = await this.offerOf({ ...source, spec: spec as JsonObject });
					await this.store.update(source.id, current => ({ ...current, spec: spec as JsonObject }));
				}
				const { source: refreshed, summary } = await this.refresh(source.id, listed);
				await this.recordAudit(
					this.auditDraft(
						ctx,
						source.tenant_id,
						"source.refresh",
						`source:${source.id}`,
						refreshed.health.state === "healthy" ? "success" : refreshed.health.state,
						{ details: { name: source.name, tool_count: refreshed.tool_count } }
					)
				);
				return { ...this.present(refreshed), ...(summary ? { changes: summary } : {}) };
			}
		},

		remove: {
			params: { id: { type: "string", max: 64 } },
			async handler(this: SourcesThis, ctx: Ctx<{ id: string }>) {
				const tenantId = this.tenantOf(ctx);
				const source = await this.findWritable(tenantId, ctx.params.id);
				await this.store.remove(source.id);
				await this.closeConnection(source.id);
				for (const id of Object.values(source.tools))
					await ctx.call("registry.remove", { id }, { meta: { tenant_id: source.tenant_id } }).catch(err => {
						if ((err as { code?: number }).code !== 404) throw err;
					});
				await this.recordAudit(
					this.auditDraft(ctx, tenantId, "source.delete", `source:${source.id}`, "success", {
						details: { name: source.name, type: source.type }
					})
				);
				void ctx.broadcast("source.deleted", { tenant_id: tenantId, source_id: source.id });
				return null;
			}
		},

		/** Every tenant's sources, for operators (REPL `sources`). Not reachable through the gateway. */
		overview: {
			visibility: "public",
			async handler(this: SourcesThis) {
				const sources = await Promise.all((await this.store.ids()).map(id => this.store.get(id)));
				return sources
					.filter((source): source is ToolSource => source !== null)
					.sort((a, b) => a.tenant_id.localeCompare(b.tenant_id) || a.name.localeCompare(b.name))
					.map(source => this.present(source));
			}
		},

		/** `tools/call` on a source's server for an `mcp` tool (the executor's tool implementation). */
		callTool: {
			visibility: "public",
			params: {
				source_id: { type: "string", max: 64 },
				remote_name: { type: "string", max: 128 },
				arguments: { type: "object" },
				timeout_ms: { type: "number", integer: true, positive: true }
			},
			async handler(
				this: SourcesThis,
				ctx: Ctx<{ source_id: string; remote_name: string; arguments: JsonObject; timeout_ms: number }>
			): Promise<RemoteCallOutcome> {
				const source = await this.findVisible(this.tenantOf(ctx), ctx.params.source_id);
				if (source.type !== "mcp") throw notFound("MCP source", source.id);
				const connection = this.connectionOf(source);
				const { remote_name, arguments: args, timeout_ms } = ctx.params;
				try {
					// The breaker counts only the server's failures; a tool's own errors are results.
					return await this.guards.run(source.id, async () => {
						const outcome = await connection.callTool(remote_name, args, timeout_ms);
						if (!outcome.ok && outcome.type === "upstream_error") this.noticeUnreachable(source);
						if (!outcome.ok && outcome.type !== "tool_error")
							throw new ToolFailure(outcome.type, outcome.message);
						return outcome;
					});
				} catch (err) {
					if (!(err instanceof ToolFailure)) throw err;
					return { ok: false, type: err.type, message: err.message };
				}
			}
		}
	},

	events: {
		// Another node deleted a source: its pooled client here must not outlive it.
		async "source.deleted"(this: SourcesThis, ctx: Context<{ source_id: string }>) {
			await this.closeConnection(ctx.params.source_id);
		}
	},

	methods: {
		present(source: ToolSource): JsonObject {
			const { headers, tools: _tools, removed: _removed, next_refresh_at: _next, spec, ...shown } = source;
			return {
				...shown,
				headers: maskSecrets({ headers }).headers,
				...(spec !== undefined ? { spec_included: true } : {}),
				tool_ids: Object.values(source.tools)
			};
		},

		async findVisible(this: SourcesThis, tenantId: string, id: string) {
			const source = await this.store.get(id);
			// Another tenant's source is indistinguishable from a missing one.
			if (!source || (source.tenant_id !== tenantId && source.tenant_id !== GLOBAL_TENANT))
				throw notFound("Source", id);
			return source;
		},

		async findWritable(this: SourcesThis, tenantId: string, id: string) {
			const source = await this.findVisible(tenantId, id);
			if (source.tenant_id !== tenantId) throw forbidden("Global sources are read-only for tenants");
			return source;
		},

		connectionOf(this: SourcesThis, source: Pick<ToolSource, "id" | "url" | "headers">) {
			let connection = this.connections.get(source.id);
			if (!connection) {
				connection = new McpConnection({
					url: source.url!,
					headers: source.headers,
					allowHosts: this.settings.outboundAllowHosts,
					timeoutMs: this.settings.connectTimeoutMs,
					onToolsChanged: () => this.scheduleRefresh(source.id),
					clientName: "tool-registry",
					clientVersion: "1.0.0"
				});
				this.connections.set(source.id, connection);
			}
			return connection;
		},

		async closeConnection(this: SourcesThis, id: string) {
			const connection = this.connections.get(id);
			this.connections.delete(id);
			await connection?.close();
		}
	},

	created(this: SourcesThis) {
		this.store = this.redis
			? new RedisSourceStore(
					this.redis,
					this.settings.redisPrefix,
					secretBoxOf(this.settings.secrets, message => this.logger.warn(message))
				)
			: new MemorySourceStore();
		this.connections = new Map();
		this.guards = new ToolGuards(this.settings.guards);
		this.refreshing = new Map();
		this.refreshAgain = new Set();
		this.ticker = null;
		this.ticking = null;
		this.closed = false;
	},

	started(this: SourcesThis) {
		// Tools are written through the registry: refreshes wait for it.
		this.broker.waitForServices(["registry"]).then(
			() => {
				if (this.closed) return;
				const tick = () => {
					if (this.ticking) return;
					this.ticking = this.refreshDue()
						.catch(err => this.logger.warn("Looking for due source refreshes failed", err))
						.finally(() => (this.ticking = null));
				};
				this.ticker = setInterval(tick, this.settings.tickMs).unref();
				tick();
				// Every node listens to its MCP sources' list_changed: a refresh connects and subscribes.
				this.store
					.ids()
					.then(ids => ids.forEach(id => this.scheduleRefresh(id)))
					.catch(err => this.logger.warn("Listing the sources to refresh failed", err));
			},
			err => this.logger.error("The registry never appeared; sources are not refreshed here", err)
		);
	},

	async stopped(this: SourcesThis) {
		this.closed = true;
		if (this.ticker) clearInterval(this.ticker);
		await this.ticking;
		await Promise.allSettled(this.refreshing.values());
		await Promise.all([...this.connections.keys()].map(id => this.closeConnection(id)));
		this.guards.shutdown();
	}
};

export default SourcesService;
