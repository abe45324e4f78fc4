import type { JsonObject } from "../../types/wire";

/** Who did it: the service token (or a trusted node), or an API key, and the agent it acted as. */
export interface AuditActor {
	kind: "service" | "key";
	key_id?: string;
	agent_id?: string;
}

/** What the audit trail records. Sources' and keys' actions are recorded by the services that own them. */
export type AuditAction =
	| "tool.register"
	| "tool.update"
	| "tool.delete"
	| "tool.rollback"
	| "tool.disable"
	| "tool.enable"
	| "tool.validate"
	| "tool.execute"
	| "task.submit"
	| "source.create"
	| "source.refresh"
	| "source.delete"
	| "key.create"
	| "key.revoke"
	| "key.rotate";

/**
 * One entry of a tenant's trail. `target` names what was acted on as `<kind>:<id>` (`tool:…`,
 * `key:…`, `task:…`, `source:…`). `details` holds ids and counts only: never a secret, a tool's
 * config, or execution parameters and results.
 */
export interface AuditEntry {
	id: string;
	at: string;
	tenant_id: string;
	actor: AuditActor;
	action: AuditAction;
	target: string;
	definition_hash?: string;
	outcome: string;
	details?: JsonObject;
}

/** An entry before the log records it: the log gives it its id and its time (`at`, the id's instant). */
export type AuditDraft = Omit<AuditEntry, "id" | "at">;

/** The last millisecond `recorded` formatted: entries come in bursts, many within one millisecond. */
let lastMs = NaN;
let lastAt = "";

/** The entry of a draft recorded under `id`; `at` is the id's millisecond, so `since` and `at` agree. */
export function recorded(id: string, draft: AuditDraft): AuditEntry {
	const ms = Number(id.slice(0, id.indexOf("-")));
	if (ms !== lastMs) [lastMs, lastAt] = [ms, new Date(ms).toISOString()];
	return Object.assign({ id, at: lastAt }, draft);
}

export interface AuditQuery {
	/** Only entries at or after this instant (epoch ms). */
	sinceMs?: number;
	limit: number;
	/** The `next_cursor` of the previous page. */
	cursor?: string;
	action?: string;
	target?: string;
}

export interface AuditPage {
	items: AuditEntry[];
	next_cursor: string | null;
}

export interface AuditRetention {
	/** Entries older than this are dropped (trimmed on append, so a quiet tenant keeps them a little longer). */
	maxAgeMs: number;
	/** At most about this many entries per tenant; the oldest go first. */
	maxEntries: number;
}

/**
 * Append-only trail of one deployment, per tenant. Every implementation promises:
 * - ids are unique and increase with time within a tenant, so newest-first order is id order;
 * - no method alters or removes an entry except trimming by `AuditRetention`;
 * - `list` sees only the named tenant's entries.
 * Stores that change data (tools) may append in the same atomic step as the change, through the
 * backend's own hook (RedisAuditLog.scriptArgs, MemoryAuditLog.appendNow).
 */
export interface AuditLog {
	append(draft: AuditDraft): Promise<AuditEntry>;
	/** The tenant's entries, newest first, filtered by action and target, from `cursor` on. */
	list(tenantId: string, query: AuditQuery): Promise<AuditPage>;
}

/** An audit id is `<ms>-<seq>` (the shape of a Redis Stream id) and doubles as the cursor. */
export const AUDIT_ID_PATTERN = /^\d{1,15}-\d{1,15}$/;

/** Entries read per filtered page before answering with what was found and a cursor to go on. */
export const MAX_SCANNED_PER_PAGE = 5000;

export const matches = (entry: AuditEntry, query: AuditQuery): boolean =>
	(query.action === undefined || entry.action === query.action) &&
	(query.target === undefined || entry.target === query.target);
