import type { StoredTool } from "../../types/wire";
import { listMerged } from "./tool-page";
import { nameTaken, staleVersion } from "../errors";
import type { MemoryAuditLog } from "../audit/memory-audit-log";
import { type AuditHook, type ToolFilter, type ToolPage, type ToolStore } from "./tool-store";

const nameKey = (tenantId: string, name: string) => `${tenantId}\u0000${name}`;

/** In-process store of the embedded default; single-threaded, so every method is atomic. */
export class MemoryToolStore implements ToolStore {
	private readonly tools = new Map<string, StoredTool>();
	private readonly history = new Map<string, Map<number, StoredTool>>();
	private readonly names = new Map<string, string>();
	/** Per tenant, ids in ascending order (ids are time-ordered, so appends keep it sorted). */
	private readonly tenantIds = new Map<string, string[]>();
	private readonly tenantRevisions = new Map<string, number>();

	/** With an audit log, every audited write appends its entry in the same synchronous step. */
	constructor(private readonly auditLog?: MemoryAuditLog) {}

	async create(tool: StoredTool, audit?: AuditHook): Promise<StoredTool> {
		const key = nameKey(tool.tenant_id, tool.name);
		if (this.names.has(key)) throw nameTaken(tool.name);
		this.names.set(key, tool.id);
		this.tools.set(tool.id, tool);
		this.history.set(tool.id, new Map([[tool.version, tool]]));
		this.insertId(tool.tenant_id, tool.id);
		this.bump(tool.tenant_id);
		this.appendAudit(audit, tool);
		return tool;
	}

	async get(id: string): Promise<StoredTool | null> {
		return this.tools.get(id) ?? null;
	}

	async getVersion(id: string, version: number): Promise<StoredTool | null> {
		return this.history.get(id)?.get(version) ?? null;
	}

	async versions(id: string): Promise<StoredTool[]> {
		return [...(this.history.get(id)?.values() ?? [])].sort((a, b) => b.version - a.version);
	}

	async findByName(tenantId: string, name: string): Promise<StoredTool | null> {
		const id = this.names.get(nameKey(tenantId, name));
		return id ? (this.tools.get(id) ?? null) : null;
	}

	list(tenantIds: string[], filter: ToolFilter, limit: number, afterId?: string): Promise<ToolPage> {
		return listMerged(
			{
				idsAfter: async (tenantId, after, count) => {
					const ids = this.tenantIds.get(tenantId) ?? [];
					const start = after === undefined ? 0 : upperBound(ids, after);
					return ids.slice(start, start + count);
				},
				getMany: async ids => ids.map(id => this.tools.get(id) ?? null)
			},
			tenantIds,
			filter,
			limit,
			afterId
		);
	}

	async update(
		id: string,
		change: (current: StoredTool) => StoredTool,
		expectedVersion?: number,
		audit?: AuditHook
	): Promise<StoredTool | null> {
		const current = this.tools.get(id);
		if (!current) return null;
		if (expectedVersion !== undefined && expectedVersion !== current.version)
			throw staleVersion(current.version);
		const next = change(current);
		if (next === current) return current;
		if (next.name !== current.name) {
			const key = nameKey(next.tenant_id, next.name);
			if (this.names.has(key)) throw nameTaken(next.name);
			this.names.delete(nameKey(current.tenant_id, current.name));
			this.names.set(key, id);
		}
		this.tools.set(id, next);
		this.history.get(id)?.set(next.version, next);
		this.bump(next.tenant_id);
		this.appendAudit(audit, next);
		return next;
	}

	async remove(id: string, audit?: AuditHook): Promise<StoredTool | null> {
		const current = this.tools.get(id);
		if (!current) return null;
		this.tools.delete(id);
		this.history.delete(id);
		this.names.delete(nameKey(current.tenant_id, current.name));
		const ids = this.tenantIds.get(current.tenant_id) ?? [];
		const at = upperBound(ids, id) - 1;
		if (ids[at] === id) ids.splice(at, 1);
		this.bump(current.tenant_id);
		this.appendAudit(audit, current);
		return current;
	}

	async revisions(tenantIds: string[]): Promise<number[]> {
		return tenantIds.map(tenantId => this.tenantRevisions.get(tenantId) ?? 0);
	}

	async countByTenant(): Promise<Record<string, number>> {
		return Object.fromEntries([...this.tenantIds].map(([tenantId, ids]) => [tenantId, ids.length]));
	}

	private appendAudit(audit: AuditHook | undefined, tool: StoredTool) {
		const draft = audit && this.auditLog ? audit(tool) : null;
		if (draft) this.auditLog!.appendNow(draft);
	}

	private bump(tenantId: string) {
		this.tenantRevisions.set(tenantId, (this.tenantRevisions.get(tenantId) ?? 0) + 1);
	}

	private insertId(tenantId: string, id: string) {
		let ids = this.tenantIds.get(tenantId);
		if (!ids) this.tenantIds.set(tenantId, (ids = []));
		// Ids are time-ordered, so a new one almost always goes last: a push, not a search and a splice.
		if (!ids.length || ids[ids.length - 1] < id) ids.push(id);
		else ids.splice(upperBound(ids, id), 0, id);
	}
}

/** Index of the first element greater than `value` in a sorted array. */
function upperBound(sorted: string[], value: string): number {
	let lo = 0;
	let hi = sorted.length;
	while (lo < hi) {
		const mid = (lo + hi) >>> 1;
		if (sorted[mid] <= value) lo = mid + 1;
		else hi = mid;
	}
	return lo;
}
