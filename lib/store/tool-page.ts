import type { StoredTool } from "../../types/wire";
import type { ToolFilter, ToolPage } from "./tool-store";

/** The two primitives a backend offers so that both backends share one paging algorithm. */
export interface IdIndex {
	/** Up to `count` ids of one tenant in ascending order, strictly after `afterId`. */
	idsAfter(tenantId: string, afterId: string | undefined, count: number): Promise<string[]>;
	getMany(ids: string[]): Promise<(StoredTool | null)[]>;
}

const BATCH = 200;

export const matchesFilter = (tool: StoredTool, filter: ToolFilter): boolean =>
	(!filter.type || tool.type === filter.type) &&
	(!filter.status || tool.status === filter.status) &&
	(!filter.tag ||
		(Array.isArray(tool.metadata.tags) && (tool.metadata.tags as unknown[]).includes(filter.tag)));

/**
 * Merges the id-ordered tool lists of several tenants (a tenant and the global one),
 * filtering as it goes, and stops as soon as one match past `limit` proves a next page exists.
 */
export async function listMerged(
	index: IdIndex,
	tenantIds: string[],
	filter: ToolFilter,
	limit: number,
	afterId?: string
): Promise<ToolPage> {
	const items: StoredTool[] = [];
	let cursor = afterId;
	for (;;) {
		const batches = await Promise.all(tenantIds.map(t => index.idsAfter(t, cursor, BATCH)));
		const merged = batches.flat().sort();
		if (merged.length === 0) return { items, last_id: null };
		// Only a prefix of the merge is safe to consume: past the shortest full batch, a
		// tenant may have ids not fetched yet.
		const fullBatchEnds = batches.filter(b => b.length === BATCH).map(b => b[b.length - 1]);
		const safeEnd = fullBatchEnds.length ? fullBatchEnds.sort()[0] : undefined;
		const consumable = safeEnd ? merged.filter(id => id <= safeEnd) : merged;
		const tools = await index.getMany(consumable);
		for (const tool of tools) {
			if (!tool || !matchesFilter(tool, filter)) continue;
			if (items.length === limit) return { items, last_id: items[limit - 1].id };
			items.push(tool);
		}
		if (!safeEnd) return { items, last_id: null };
		cursor = safeEnd;
	}
}
