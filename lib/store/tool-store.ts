import type { StoredTool, ToolStatus } from "../../types/wire";
import type { AuditDraft } from "../audit/audit-log";

export interface ToolFilter {
	type?: string;
	tag?: string;
	status?: ToolStatus;
}

export interface ToolPage {
	items: StoredTool[];
	/** Id of the last item returned when more may follow, else null. */
	last_id: string | null;
}

/**
 * The audit entry of a write, built from the tool as written (or as removed), or null when the
 * write is not worth one. A store built with an audit log appends it in the same atomic step as
 * the write: both happen or neither does.
 */
export type AuditHook = (tool: StoredTool) => AuditDraft | null;

/**
 * Persistence of tools. Every implementation must make `create` and `update` atomic with
 * respect to the per-tenant name index and the version check, so that concurrent gateways
 * cannot both win.
 */
export interface ToolStore {
	/** Stores a new tool; throws `nameTaken` when its name is already used in its tenant. */
	create(tool: StoredTool, audit?: AuditHook): Promise<StoredTool>;
	get(id: string): Promise<StoredTool | null>;
	/** An earlier (or the current) version of a tool still stored. */
	getVersion(id: string, version: number): Promise<StoredTool | null>;
	/** Every version still stored, newest first (empty when the tool is gone). */
	versions(id: string): Promise<StoredTool[]>;
	findByName(tenantId: string, name: string): Promise<StoredTool | null>;
	/** Tools of the given tenants merged in id order, starting after `afterId`. */
	list(tenantIds: string[], filter: ToolFilter, limit: number, afterId?: string): Promise<ToolPage>;
	/**
	 * Replaces the tool by `change(current)` atomically. Throws `staleVersion` when `expectedVersion`
	 * is given and stale, `nameTaken` when the new name is taken. Resolves null when the tool is gone.
	 * When `change` returns `current` itself nothing is written.
	 */
	update(
		id: string,
		change: (current: StoredTool) => StoredTool,
		expectedVersion?: number,
		audit?: AuditHook
	): Promise<StoredTool | null>;
	/** Deletes the tool and its history; resolves the deleted tool or null. */
	remove(id: string, audit?: AuditHook): Promise<StoredTool | null>;
	/**
	 * Write counters of the given tenants: every create, update and delete of a tenant's tool adds
	 * one, in the same atomic write. Indexes fed by events compare them to notice missed events.
	 */
	revisions(tenantIds: string[]): Promise<number[]>;
	/** Number of tools per tenant, for metrics. */
	countByTenant(): Promise<Record<string, number>>;
}
