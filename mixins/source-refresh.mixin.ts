import type { Service, ServiceSchema } from "moleculer";
import { notFound } from "../lib/errors";
import { METRICS } from "../lib/metrics/names";
import type { McpConnection } from "../lib/sources/mcp-connection";
import { offeredTools } from "../lib/sources/offered-tools";
import {
	reconcile,
	type OfferedTool,
	type ReconcileSummary,
	type SourceRegistry
} from "../lib/sources/reconcile";
import type { SourceStore } from "../lib/store/source-store";
import type { JsonObject, StoredTool, ToolSource } from "../types/wire";

export interface SourceRefreshSettings {
	/** OUTBOUND_ALLOW_HOSTS: hosts or CIDRs sources may reach although private. */
	outboundAllowHosts: string[];
	/** How often a healthy source's tool list is read again (besides `tools/list_changed`). */
	refreshIntervalMs: number;
	/** First wait before probing an unreachable source again; doubles after each failure. */
	probeBaseMs: number;
	/** Longest wait between probes of an unreachable source. */
	probeMaxMs: number;
	/** Bounds connecting to a source and each listing request. */
	connectTimeoutMs: number;
	/** Largest OpenAPI document fetched from a URL. */
	maxSpecBytes: number;
}

export type RefreshResult = { source: ToolSource; summary: ReconcileSummary | null };

export interface SourceRefreshMethods {
	/** What the source offers now (throws a 422 for what will never work, SourceUnavailable for a silent server). */
	offerOf(source: ToolSource): Promise<OfferedTool[]>;
	registryFor(tenantId: string): SourceRegistry;
	refresh(id: string, listed?: OfferedTool[]): Promise<RefreshResult>;
	scheduleRefresh(id: string): void;
	/** A call found the server down: the source is read again now rather than at its next refresh. */
	noticeUnreachable(source: ToolSource): void;
	shareHealth(source: ToolSource): Promise<void>;
	refreshDue(): Promise<void>;
	sampleMetrics(): Promise<void>;
}

export interface SourceRefreshLocals {
	store: SourceStore;
	/** Refresh in progress per source, and whether another was asked for meanwhile. */
	refreshing: Map<string, Promise<RefreshResult>>;
	refreshAgain: Set<string>;
}

/** What the service using the mixin provides: the pooled client of an MCP source. */
interface Host {
	connectionOf(source: Pick<ToolSource, "id" | "url" | "headers">): McpConnection;
}

type This = Service<SourceRefreshSettings> & SourceRefreshMethods & SourceRefreshLocals & Host;

/** Wait before the next probe of a source that failed `failures` times in a row. */
const backoff = (failures: number, baseMs: number, maxMs: number) =>
	Math.min(baseMs * 2 ** Math.max(0, failures - 1), maxMs);

/**
 * How the `sources` service keeps a source's tools current: reads what the source offers,
 * reconciles its tools through the registry, records the source's health (backoff while
 * unreachable) and shares it with the tools, and finds the sources whose refresh is due.
 */
export function SourceRefreshMixin(): Partial<ServiceSchema> {
	const mixin: Partial<
		ServiceSchema<SourceRefreshSettings, SourceRefreshMethods, SourceRefreshLocals, This>
	> = {
		methods: {
			offerOf(this: This, source: ToolSource) {
				return offeredTools(source, {
					connection: source.type === "mcp" ? this.connectionOf(source) : undefined,
					allowHosts: this.settings.outboundAllowHosts,
					timeoutMs: this.settings.connectTimeoutMs,
					maxSpecBytes: this.settings.maxSpecBytes
				});
			},

			registryFor(this: This, tenantId: string): SourceRegistry {
				const opts = { meta: { tenant_id: tenantId } };
				const call = <T>(action: string, params: JsonObject) =>
					this.broker.call<T, JsonObject>(action, params, opts);
				const orNull = (err: unknown) => {
					if ((err as { code?: number }).code === 404) return null;
					throw err;
				};
				return {
					get: id => call<StoredTool>("registry.resolve", { tool_id: id }).catch(orNull),
					findByName: name =>
						call<StoredTool>("registry.resolve", { tool_name: name })
							.then(tool => (tool.tenant_id === tenantId ? tool : null))
							.catch(orNull),
					register: definition => call<StoredTool>("registry.register", definition as unknown as JsonObject),
					update: (id, definition, expectedVersion) =>
						call<StoredTool>("registry.update", { id, ...definition, expected_version: expectedVersion }),
					setStatus: (id, status) => call<StoredTool>("registry.setStatus", { id, status }),
					recordHealth: (id, health) => call<StoredTool>("registry.recordHealth", { id, health })
				};
			},

			/**
			 * Reads what the source offers and reconciles its tools. One refresh per source at a time on
			 * this node; one asked for meanwhile runs once more after it.
			 */
			refresh(this: This, id: string, listed?: OfferedTool[]) {
				const running = this.refreshing.get(id);
				if (running) {
					this.refreshAgain.add(id);
					return running;
				}
				const run = async (): Promise<RefreshResult> => {
					const source = await this.store.get(id);
					if (!source) throw notFound("Source", id);
					const now = Date.now();
					let offered: OfferedTool[];
					try {
						offered = listed ?? (await this.offerOf(source));
					} catch (err) {
						const failures = source.health.failures + 1;
						const wait = backoff(failures, this.settings.probeBaseMs, this.settings.probeMaxMs);
						const message = (err as Error).message;
						this.logger.info(`Source '${source.name}' (${id}) is unreachable: ${message}`);
						const updated = await this.store.update(id, current => ({
							...current,
							health: {
								state: "unreachable",
								checked_at: new Date(now).toISOString(),
								next_check_at: new Date(now + wait).toISOString(),
								error: message,
								failures
							},
							next_refresh_at: new Date(now + wait).toISOString()
						}));
						if (!updated) throw notFound("Source", id);
						await this.shareHealth(updated);
						return { source: updated, summary: null };
					}
					const { summary, tools, removed } = await reconcile(
						source,
						offered,
						this.registryFor(source.tenant_id)
					);
					const next = new Date(now + this.settings.refreshIntervalMs).toISOString();
					const updated = await this.store.update(id, current => ({
						...current,
						tools,
						removed,
						tool_count: offered.length,
						health: {
							state: "healthy",
							checked_at: new Date(now).toISOString(),
							next_check_at: next,
							failures: 0
						},
						last_refresh_at: new Date(now).toISOString(),
						next_refresh_at: next,
						updated_at: new Date(now).toISOString()
					}));
					if (!updated) throw notFound("Source", id);
					await this.shareHealth(updated);
					return { source: updated, summary };
				};
				const promise = run().finally(() => {
					this.refreshing.delete(id);
					if (this.refreshAgain.delete(id)) this.scheduleRefresh(id);
				});
				this.refreshing.set(id, promise);
				return promise;
			},

			/** The source's tools take its health: an unreachable server leaves them `unreachable`. */
			async shareHealth(this: This, source: ToolSource) {
				const { state, checked_at, next_check_at, error } = source.health;
				const health = { state, checked_at, ...(state === "unreachable" ? { next_check_at, error } : {}) };
				const registry = this.registryFor(source.tenant_id);
				const removed = new Set(source.removed);
				for (const [key, id] of Object.entries(source.tools)) {
					if (removed.has(key)) continue;
					const tool = await registry.get(id);
					// A healthy tool stays as it is; an unreachable one learns when the source is probed next.
					if (tool && (tool.health?.state !== state || state === "unreachable"))
						await registry
							.recordHealth(id, health)
							.catch(err => this.logger.warn(`Health of tool ${id} not recorded`, err));
				}
			},

			scheduleRefresh(this: This, id: string) {
				this.refresh(id).catch(err => this.logger.warn(`Refresh of source ${id} failed`, err));
			},

			noticeUnreachable(this: This, source: ToolSource) {
				// An unreachable source is already probed with backoff; a refresh under way will see it too.
				if (source.health.state === "unreachable" || this.refreshing.has(source.id)) return;
				this.scheduleRefresh(source.id);
			},

			/**
			 * Refreshes the sources whose time has come. A node claims a refresh by moving its time
			 * forward in the store first, so in a cluster one node does each.
			 */
			async refreshDue(this: This) {
				for (const id of await this.store.ids()) {
					const now = Date.now();
					const source = await this.store.get(id);
					if (!source || Date.parse(source.next_refresh_at) > now) continue;
					const seen = source.next_refresh_at;
					const claim = new Date(now + this.settings.refreshIntervalMs).toISOString();
					const claimed = await this.store.update(id, current =>
						current.next_refresh_at === seen ? { ...current, next_refresh_at: claim } : current
					);
					if (claimed?.next_refresh_at === claim) this.scheduleRefresh(id);
				}
			},

			async sampleMetrics(this: This) {
				for (const id of await this.store.ids()) {
					const source = await this.store.get(id);
					if (!source) continue;
					const labels = { tenant: source.tenant_id, source: source.name };
					this.broker.metrics.set(
						METRICS.sourceHealthy,
						source.health.state === "unreachable" ? 0 : 1,
						labels
					);
					this.broker.metrics.set(METRICS.sourceTools, source.tool_count, labels);
					if (source.last_refresh_at)
						this.broker.metrics.set(
							METRICS.sourceLastRefresh,
							Date.parse(source.last_refresh_at) / 1000,
							labels
						);
				}
			}
		}
	};
	return mixin as Partial<ServiceSchema>;
}
