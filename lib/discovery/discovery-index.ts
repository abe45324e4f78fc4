import type { StoredTool } from "../../types/wire";
import { TenantIndex, type DiscoverQuery, type RankedTool } from "./tenant-index";

const GLOBAL_TENANT = "*";

/** Loads every tool a tenant can see (its own and the global ones) from the store. */
export type TenantLoader = (tenantId: string) => AsyncIterable<StoredTool>;

/**
 * Per-tenant search indexes of one registry node, built from the store on a tenant's first
 * search and kept current from `tool.*` events. Idle tenants are evicted (least recently used)
 * so memory follows the active tenants, not all of them.
 */
export class DiscoveryIndex {
	private readonly indexes = new Map<string, Promise<TenantIndex>>();
	/** Changes seen while a tenant's index was loading; applied once it is built. */
	private readonly pendingChanges = new Map<string, Map<string, StoredTool | null>>();

	constructor(
		private readonly load: TenantLoader,
		private readonly maxTenants = 1000
	) {}

	async query(tenantId: string, q: DiscoverQuery): Promise<RankedTool[]> {
		return (await this.indexFor(tenantId)).query(q);
	}

	/**
	 * Applies the current state of a tool (null = deleted) to every loaded index that shows it:
	 * its tenant's, or all of them for a global tool.
	 */
	apply(tenantId: string, id: string, current: StoredTool | null): void {
		const targets = tenantId === GLOBAL_TENANT ? [...this.indexes.keys()] : [tenantId];
		for (const target of targets) {
			const pending = this.pendingChanges.get(target);
			if (pending) pending.set(id, current);
			void this.indexes.get(target)?.then(index => (current ? index.upsert(current) : index.remove(id)));
		}
	}

	/** Forgets every index: they are rebuilt from the store on the next search. */
	clear(): void {
		this.indexes.clear();
	}

	private indexFor(tenantId: string): Promise<TenantIndex> {
		let index = this.indexes.get(tenantId);
		if (index) {
			this.indexes.delete(tenantId);
			this.indexes.set(tenantId, index);
			return index;
		}
		index = this.build(tenantId);
		this.indexes.set(tenantId, index);
		if (this.indexes.size > this.maxTenants) this.indexes.delete(this.indexes.keys().next().value!);
		return index;
	}

	private async build(tenantId: string): Promise<TenantIndex> {
		const pending = new Map<string, StoredTool | null>();
		this.pendingChanges.set(tenantId, pending);
		try {
			const index = new TenantIndex(tenantId);
			for await (const tool of this.load(tenantId)) index.upsert(tool);
			for (const [id, current] of pending) if (current) index.upsert(current);
			else index.remove(id);
			return index;
		} catch (err) {
			this.indexes.delete(tenantId);
			throw err;
		} finally {
			this.pendingChanges.delete(tenantId);
		}
	}
}
