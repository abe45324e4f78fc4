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

const compareIds = (a: string, b: string) => {
	const [am, as] = a.split("-").map(Number);
	const [bm, bs] = b.split("-").map(Number);
	return am - bm || as - bs;
};

/** The embedded default: one trail per process (every service of the broker shares it). */
export class MemoryAuditLog implements AuditLog {
	private readonly trails = new Map<string, AuditEntry[]>();
	private lastMs = 0;
	private seq = 0;

	constructor(
		private readonly retention: AuditRetention,
		private readonly now: () => number = Date.now
	) {}

	/** Appends synchronously, so a store can record its change and the entry in one turn of the loop. */
	appendNow(draft: AuditDraft): AuditEntry {
		const now = this.now();
		if (now > this.lastMs) [this.lastMs, this.seq] = [now, 0];
		else this.seq++;
		const entry = recorded(`${this.lastMs}-${this.seq}`, draft);
		let trail = this.trails.get(draft.tenant_id);
		if (!trail) this.trails.set(draft.tenant_id, (trail = []));
		trail.push(entry);
		const cutoff = now - this.retention.maxAgeMs;
		let drop = Math.max(0, trail.length - this.retention.maxEntries);
		while (drop < trail.length && Number(trail[drop].id.split("-")[0]) < cutoff) drop++;
		if (drop) trail.splice(0, drop);
		return entry;
	}

	async append(draft: AuditDraft): Promise<AuditEntry> {
		return this.appendNow(draft);
	}

	async list(tenantId: string, query: AuditQuery): Promise<AuditPage> {
		const trail = this.trails.get(tenantId) ?? [];
		let index = trail.length - 1;
		if (query.cursor && AUDIT_ID_PATTERN.test(query.cursor))
			while (index >= 0 && compareIds(trail[index].id, query.cursor) >= 0) index--;
		const items: AuditEntry[] = [];
		const oldest = Math.max(query.sinceMs ?? 0, this.now() - this.retention.maxAgeMs);
		let scanned = 0;
		for (; index >= 0 && items.length < query.limit && scanned < MAX_SCANNED_PER_PAGE; index--, scanned++) {
			const entry = trail[index];
			if (Number(entry.id.split("-")[0]) < oldest) {
				index = -1;
				break;
			}
			if (matches(entry, query)) items.push(entry);
		}
		const last = trail[index + 1];
		return { items, next_cursor: index >= 0 && last ? last.id : null };
	}
}

/** One memory trail per broker, so the services of a process write and read the same one. */
const shared = new WeakMap<object, MemoryAuditLog>();

export function sharedMemoryAuditLog(owner: object, retention: AuditRetention): MemoryAuditLog {
	let log = shared.get(owner);
	if (!log) shared.set(owner, (log = new MemoryAuditLog(retention)));
	return log;
}
