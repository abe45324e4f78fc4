import { LRUCache } from "lru-cache";
import type { StoredTool } from "../../types/wire";
import { TenantIndex, type DiscoverQuery, type RankedTool } from "./tenant-index";
import { GLOBAL_TENANT } from "../tenancy";
import type { QuantizedVector } from "./vectors";

export interface IndexSource {
	/** Every tool a tenant can see (its own and the global ones). */
	load(tenantId: string): AsyncIterable<StoredTool>;
	/** The store's write counters of [tenant, global] (see ToolStore.revisions). */
	revisions(tenantId: string): Promise<[number, number]>;
}

interface Entry {
	index: Promise<TenantIndex>;
	/** Writes of [tenant, global] this index reflects: the store's counters at build plus events applied since. */
	seen: [number, number];
}

/**
 * Per-tenant search indexes of one registry node, built from the store on a tenant's first
 * search and kept current from `tool.*` events. Before each search the store's write counters are
 * compared with the writes the index has seen: events missed (a node that just joined, a
 * transporter outage) make it rebuild instead of answering stale. Idle tenants are evicted (least
 * recently used), so memory follows the active tenants.
 */
export class DiscoveryIndex {
	private readonly entries: LRUCache<string, Entry>;
	/** Changes seen while a tenant's index was loading; applied once it is built. */
	private readonly pendingChanges = new Map<string, Map<string, StoredTool | null>>();

	/** @param needsVector told of each indexed tool whose vector is not known yet */
	constructor(
		private readonly source: IndexSource,
		maxTenants = 1000,
		private readonly needsVector: (tool: StoredTool) => void = () => undefined
	) {
		this.entries = new LRUCache({ max: maxTenants });
	}

	async query(tenantId: string, q: DiscoverQuery): Promise<RankedTool[]> {
		const revisions = await this.source.revisions(tenantId);
		let entry = this.entries.get(tenantId);
		if (entry && (revisions[0] > entry.seen[0] || revisions[1] > entry.seen[1])) entry = undefined;
		if (entry) {
			// An event counted for a write the build already read would hide a later missed event.
			entry.seen = [Math.min(entry.seen[0], revisions[0]), Math.min(entry.seen[1], revisions[1])];
		} else entry = this.build(tenantId, revisions);
		return (await entry.index).query(q);
	}

	/**
	 * Applies the current state of a tool (null = deleted) to every loaded index that shows it: its
	 * tenant's, or all of them for a global tool. Each call accounts for one write of that tenant.
	 */
	apply(tenantId: string, id: string, current: StoredTool | null): void {
		const global = tenantId === GLOBAL_TENANT;
		for (const [target, entry] of this.entries.entries()) {
			if (!global && target !== tenantId) continue;
			entry.seen[global && target !== GLOBAL_TENANT ? 1 : 0]++;
			this.pendingChanges.get(target)?.set(id, current);
			void entry.index.then(index => (current ? index.upsert(current) : index.remove(id)));
		}
	}

	/** Whether a loaded index shows the tenant's tools (a global tool shows in every index). */
	shows(tenantId: string): boolean {
		return tenantId === GLOBAL_TENANT ? this.entries.size > 0 : this.entries.has(tenantId);
	}

	/** The tenants whose index is loaded here. */
	tenants(): string[] {
		return [...this.entries.keys()];
	}

	/** Drops the indexes of the tenants `keep` refuses (now owned by another node). */
	retain(keep: (tenantId: string) => boolean): void {
		for (const tenantId of this.tenants()) if (!keep(tenantId)) this.entries.delete(tenantId);
	}

	/** Gives the tools of one definition hash, in every loaded index, their vector. */
	attachVector(hash: string, vector: QuantizedVector): void {
		for (const entry of this.entries.values())
			entry.index.then(
				index => index.attachVector(hash, vector),
				() => undefined
			);
	}

	/** Tools of the loaded indexes still ranked lexically only, waiting for their vector. */
	async pendingVectors(): Promise<number> {
		let pending = 0;
		for (const entry of this.entries.values())
			pending += await entry.index.then(
				index => index.pendingVectors,
				() => 0
			);
		return pending;
	}

	private build(tenantId: string, revisions: [number, number]): Entry {
		const pending = new Map<string, StoredTool | null>();
		this.pendingChanges.set(tenantId, pending);
		const entry: Entry = { seen: [...revisions], index: this.load(tenantId, pending) };
		this.entries.set(tenantId, entry);
		return entry;
	}

	private async load(tenantId: string, pending: Map<string, StoredTool | null>): Promise<TenantIndex> {
		try {
			const index = new TenantIndex(tenantId, this.needsVector);
			for await (const tool of this.source.load(tenantId)) index.upsert(tool);
			for (const [id, current] of pending)
				if (current) index.upsert(current);
				else index.remove(id);
			return index;
		} catch (err) {
			this.entries.delete(tenantId);
			throw err;
		} finally {
			if (this.pendingChanges.get(tenantId) === pending) this.pendingChanges.delete(tenantId);
		}
	}
}
