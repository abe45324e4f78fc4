import {
	AUDIT_ID_PATTERN,
	MAX_SCANNED_PER_PAGE,
	matches,
	recorded,
	type AuditDraft,
	type AuditEntry,
	type AuditLog,
	type AuditPage,
	type AuditQuery,
	type AuditRetention
} from "./audit-log";
import { slotTag, type RedisClient, runScript } from "../redis";

/** XADD bounded by length, then trimmed by age: one script, one round trip. */
const APPEND_SCRIPT = `
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'e', ARGV[2])
redis.call('XTRIM', KEYS[1], 'MINID', '~', ARGV[3])
return id
`;

/** Entries read from the stream per round trip while filling a filtered page. */
const BATCH = 200;

/**
 * One Redis Stream per tenant, `audit:{tenant}` under the prefix (the tenant as a hash tag on a
 * cluster, in the slot of the tenant's tools). Stream ids are Redis-assigned
 * and increasing, which gives the order and the cursor; nothing but XADD and trimming writes the
 * stream. The entry is one JSON field so it reads back exactly as written.
 */
export class RedisAuditLog implements AuditLog {
	constructor(
		private readonly redis: RedisClient,
		private readonly prefix: string,
		private readonly retention: AuditRetention,
		private readonly now: () => number = Date.now
	) {}

	/** The stream of a tenant; stores that append inside their own transaction pass it among their keys. */
	key(tenantId: string): string {
		return `${this.prefix}audit:${slotTag(this.redis, tenantId)}`;
	}

	/** KEYS and ARGV for the append inside a caller's Lua script (see `luaAppend`). */
	scriptArgs(draft: AuditDraft): { key: string; args: string[] } {
		return {
			key: this.key(draft.tenant_id),
			args: [String(this.retention.maxEntries), JSON.stringify(draft), this.minId()]
		};
	}

	async append(draft: AuditDraft): Promise<AuditEntry> {
		const { key, args } = this.scriptArgs(draft);
		const id = (await runScript(this.redis, APPEND_SCRIPT, 1, key, ...args)) as string;
		return recorded(id, draft);
	}

	async list(tenantId: string, query: AuditQuery): Promise<AuditPage> {
		const key = this.key(tenantId);
		// Trimming by age is approximate (whole stream nodes); reads apply the bound exactly.
		const oldest = Math.max(query.sinceMs ?? 0, this.now() - this.retention.maxAgeMs, 0);
		const since = String(Math.floor(oldest));
		let end = query.cursor && AUDIT_ID_PATTERN.test(query.cursor) ? `(${query.cursor}` : "+";
		const items: AuditEntry[] = [];
		let scanned = 0;
		for (;;) {
			const count = query.action || query.target ? BATCH : query.limit - items.length;
			const batch = await this.redis.xrevrange(key, end, since, "COUNT", count);
			for (const [id, fields] of batch) {
				scanned++;
				const entry = recorded(id, JSON.parse(fields[1]) as AuditDraft);
				if (matches(entry, query)) items.push(entry);
				end = `(${id}`;
				if (items.length === query.limit) return { items, next_cursor: id };
			}
			if (batch.length < count) return { items, next_cursor: null };
			// Long runs of other actions: answer with what was found and let the caller go on.
			if (scanned >= MAX_SCANNED_PER_PAGE) return { items, next_cursor: end.slice(1) };
		}
	}

	private minId(): string {
		return String(Math.max(0, this.now() - this.retention.maxAgeMs));
	}
}

/** The append as Lua, for stores whose change is itself a script: KEYS[k] stream, ARGV[a..a+2]. */
export const luaAppend = (keyIndex: number, argIndex: number) => `
redis.call('XADD', KEYS[${keyIndex}], 'MAXLEN', '~', ARGV[${argIndex}], '*', 'e', ARGV[${argIndex + 1}])
redis.call('XTRIM', KEYS[${keyIndex}], 'MINID', '~', ARGV[${argIndex + 2}])
`;
