import os from "node:os";
import type { Context, Service, ServiceSchema } from "moleculer";
import { DiscoveryIndex } from "../lib/discovery/discovery-index";
import type { Embedder } from "../lib/discovery/embedders/embedder";
import { LocalEmbedder } from "../lib/discovery/embedders/local";
import { OrchestratorEmbedder } from "../lib/discovery/embedders/orchestrator";
import { QueryVectors } from "../lib/discovery/query-vectors";
import type { DiscoverMode } from "../lib/discovery/tenant-index";
import { TENANT_SHARD_STRATEGY, TenantOwners } from "../lib/discovery/tenant-owners";
import { ToolVectors } from "../lib/discovery/tool-vectors";
import { FORMATS, formatTools, type DiscoveryFormat, type DiscoveryView } from "../lib/formats";
import { MemoryVectorStore } from "../lib/store/memory-vector-store";
import { RedisVectorStore } from "../lib/store/redis-vector-store";
import type { ToolStore } from "../lib/store/tool-store";
import type { CallerMeta, StoredTool } from "../types/wire";
import { GLOBAL_TENANT, type TenantScopeMethods } from "./tenant-scope.mixin";
import type { RedisLocals, RedisSettings } from "./redis.mixin";
import { config } from "../lib/config";

export type EmbeddingsMode = "local" | "orchestrator" | "off";

export interface DiscoverySettings {
	/** `local` (model in worker threads), `orchestrator` (its Embedding Service) or `off` (lexical only). */
	embeddings: EmbeddingsMode;
	/** Base URL of the Agent Orchestrator, for `embeddings: orchestrator`. */
	orchestratorUrl?: string;
	serviceToken?: string;
	/** Worker threads of the local model; each holds its own copy (about 100 MB). */
	embeddingThreads: number;
	/** Query vectors cached per node. */
	queryVectorCacheSize: number;
	/** Longest a discovery request waits for its query's vector before ranking lexically alone. */
	semanticWaitMs: number;
	/** Timeout of one request to the orchestrator's Embedding Service. */
	embeddingRequestTimeoutMs: number;
	/** Moleculer keeps these out of the service's published settings (merged with the host's). */
	$secureSettings: string[];
	/** `tenant`: this node answers (and indexes) only the tenants it owns, forwarding the others. */
	discoverySharding: "off" | "tenant";
}

/** What the service using this mixin provides: its tool store (built in `created`) and its reads. */
interface HostService extends TenantScopeMethods, RedisLocals {
	store: ToolStore;
	present(tool: StoredTool): StoredTool;
}

export interface DiscoveryLocals {
	discovery: DiscoveryIndex;
	embedder: Embedder | null;
	queryVectors: QueryVectors | null;
	toolVectors: ToolVectors | null;
	/** With sharding: which registry node owns each tenant. */
	tenantOwners: TenantOwners | null;
}

type DiscoveryThis = Service<DiscoverySettings & RedisSettings> & HostService & DiscoveryLocals;

interface DiscoverParams {
	query?: string;
	types?: string[];
	tags?: string[];
	limit: number;
	offset: number;
	format: DiscoveryFormat;
	mode: DiscoverMode;
	view: DiscoveryView;
	healthy_only?: boolean;
}

function createEmbedder(settings: DiscoverySettings): Embedder | null {
	if (settings.embeddings === "local")
		return new LocalEmbedder({
			threads: settings.embeddingThreads,
			maxQueryBatch: 32,
			maxBackgroundBatch: 16
		});
	if (settings.embeddings === "orchestrator") {
		if (!settings.orchestratorUrl) throw new Error("EMBEDDINGS=orchestrator needs ORCHESTRATOR_URL");
		return new OrchestratorEmbedder({
			baseUrl: settings.orchestratorUrl,
			serviceToken: settings.serviceToken,
			timeoutMs: settings.embeddingRequestTimeoutMs,
			maxBatch: 64
		});
	}
	return null;
}

/**
 * Discovery (`discover` action) for the service that keeps the catalog: per-tenant indexes kept
 * current from `tool.*` events, ranked by words and by meaning. Tool vectors are computed in the
 * background when a tool is written and shared through the vector store; until a tool has its vector,
 * and whenever embeddings are off, loading or failing, ranking is lexical, so discovery always answers.
 */
export function DiscoveryMixin(): Partial<ServiceSchema> {
	const mixin: Partial<ServiceSchema<DiscoverySettings, object, DiscoveryLocals, DiscoveryThis>> = {
		settings: {
			embeddings: config().embeddings,
			orchestratorUrl: config().orchestratorUrl,
			serviceToken: config().serviceToken,
			embeddingThreads: config().embeddingThreads,
			queryVectorCacheSize: 10_000,
			semanticWaitMs: 1000,
			embeddingRequestTimeoutMs: 10_000,
			discoverySharding: config().discoverySharding,
			$secureSettings: ["serviceToken"]
		},

		actions: {
			discover: {
				// Callers route a tenant to its owner directly; the handler forwards whatever comes elsewhere.
				...(config().discoverySharding === "tenant" ? TENANT_SHARD_STRATEGY : {}),
				params: {
					query: { type: "string", max: 500, optional: true },
					types: { type: "array", items: { type: "string", max: 64 }, max: 20, optional: true },
					tags: { type: "array", items: { type: "string", max: 64 }, max: 20, optional: true },
					limit: { type: "number", integer: true, min: 1, max: 100, convert: true, default: 20 },
					// Paging for clients that list everything (MCP tools/list); discovery itself wants the top few.
					offset: { type: "number", integer: true, min: 0, max: 100000, convert: true, default: 0 },
					format: { type: "enum", values: Object.keys(FORMATS), default: "native" },
					mode: { type: "enum", values: ["hybrid", "lexical", "semantic"], default: "hybrid" },
					view: { type: "enum", values: ["full", "summary"], default: "full" },
					healthy_only: { type: "boolean", convert: true, optional: true }
				},
				async handler(this: DiscoveryThis, ctx: Context<DiscoverParams, CallerMeta>) {
					const owner = this.tenantOwners?.ownerOf(this.tenantOf(ctx));
					// Forwarded once at most: a call from another registry node is answered here.
					if (owner && owner !== this.broker.nodeID && ctx.caller !== this.fullName)
						return ctx.call(`${this.fullName}.discover`, ctx.params, { nodeID: owner });
					const { query, types, tags, limit, offset, format, mode, view, healthy_only } = ctx.params;
					const vector =
						query?.trim() && mode !== "lexical" && this.queryVectors
							? await this.queryVectors.get(query)
							: null;
					const ranked = await this.discovery.query(this.tenantOf(ctx), {
						query,
						types,
						tags,
						limit,
						offset,
						agentId: this.agentOf(ctx),
						mode,
						vector,
						healthyOnly: healthy_only
					});
					for (const item of ranked) item.tool = this.present(item.tool);
					return formatTools(format, ranked, view);
				}
			}
		},

		events: {
			/**
			 * Broadcast by whichever registry node made the change. Every node re-reads the tool from the
			 * store, so events arriving out of order still leave its index with the current state; the
			 * node that made the change also starts on the tool's vector, loaded index or not.
			 */
			"tool.*": {
				async handler(this: DiscoveryThis, ctx: Context<{ tenant_id: string; tool: StoredTool }>) {
					const { tenant_id, tool } = ctx.params;
					// A node holding none of the indexes the change shows has nothing to update.
					if (ctx.nodeID !== this.broker.nodeID && !this.discovery.shows(tenant_id)) return;
					const current = await this.store.get(tool.id);
					this.discovery.apply(tenant_id, tool.id, current);
					if (current && ctx.nodeID === this.broker.nodeID) this.toolVectors?.request(current);
				}
			},
			/** Registry nodes came or went: indexes of tenants now owned elsewhere are dropped. */
			"$services.changed"(this: DiscoveryThis) {
				if (!this.tenantOwners) return;
				this.tenantOwners.membershipChanged();
				this.discovery.retain(tenantId => this.tenantOwners!.owns(tenantId));
			}
		},

		created(this: DiscoveryThis) {
			const settings = this.settings;
			if (!["off", "tenant"].includes(settings.discoverySharding))
				throw new Error(`DISCOVERY_SHARDING must be off or tenant, not '${settings.discoverySharding}'`);
			this.tenantOwners =
				settings.discoverySharding === "tenant"
					? new TenantOwners(this.broker, `${this.fullName}.discover`)
					: null;
			if (!["local", "orchestrator", "off"].includes(settings.embeddings))
				throw new Error(`EMBEDDINGS must be local, orchestrator or off, not '${settings.embeddings}'`);
			this.embedder = createEmbedder(settings);
			this.queryVectors = this.embedder
				? new QueryVectors(this.embedder, {
						cacheSize: settings.queryVectorCacheSize,
						waitMs: settings.semanticWaitMs,
						retryMs: 1000
					})
				: null;
			// The host builds its store in its own `created`, after this one: read it when first needed.
			const store = () => this.store;
			const visibleTo = (tenantId: string) =>
				tenantId === GLOBAL_TENANT ? [GLOBAL_TENANT] : [tenantId, GLOBAL_TENANT];
			this.discovery = new DiscoveryIndex(
				{
					async *load(tenantId) {
						let after: string | undefined;
						do {
							const page = await store().list(visibleTo(tenantId), {}, 500, after);
							yield* page.items;
							after = page.last_id ?? undefined;
						} while (after);
					},
					async revisions(tenantId) {
						const [own, global] = await store().revisions([tenantId, GLOBAL_TENANT]);
						// The global index is the global tenant's own: it has no second counter.
						return [own, tenantId === GLOBAL_TENANT ? 0 : global];
					}
				},
				1000,
				tool => this.toolVectors?.request(tool)
			);
			this.toolVectors = this.embedder
				? new ToolVectors(
						this.redis ? new RedisVectorStore(this.redis, settings.redisPrefix) : new MemoryVectorStore(),
						this.embedder,
						(hash, vector) => this.discovery.attachVector(hash, vector),
						{
							batchSize: 256,
							claimTtlMs: 120_000,
							retryMs: 1000,
							owner: `${this.broker.nodeID}:${os.hostname()}`
						}
					)
				: null;
		},

		started(this: DiscoveryThis) {
			// Loads the model in its worker now, without holding up the start: lexical ranking serves meanwhile.
			void this.queryVectors?.get("find a tool");
		},

		async stopped(this: DiscoveryThis) {
			this.toolVectors?.close();
			await this.embedder?.close();
		}
	};
	return mixin as Partial<ServiceSchema>;
}
