import type Redis from "ioredis";
import type { ChainableCommander } from "ioredis";
import type { StoredTool } from "../../types/wire";
import { conflict, nameTaken, staleVersion } from "../errors";
import { listMerged } from "./tool-page";
import { luaAppend, type RedisAuditLog } from "../audit/redis-audit-log";
import type { SecretBox } from "../secret-box";
import { resealRecords, type Resealable, type ResealResult } from "./reseal";
import { type AuditHook, type ToolFilter, type ToolPage, type ToolStore } from "./tool-store";

/** HSETNX on the tenant's name index decides the race; the rest is written only by the winner. */
const createScript = (audited: boolean) => `
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 0 then return 0 end
redis.call('SET', KEYS[2], ARGV[3])
redis.call('ZADD', KEYS[3], 0, ARGV[2])
redis.call('HSET', KEYS[4], ARGV[4], ARGV[3])
redis.call('INCR', KEYS[5])
${audited ? luaAppend(6, 5) : ""}
return 1
`;
const CREATE_SCRIPT = createScript(false);
/** The same with the audit entry appended to KEYS[6] (ARGV[5..7], see RedisAuditLog.scriptArgs). */
const CREATE_AUDITED_SCRIPT = createScript(true);

const MAX_TRANSACTION_RETRIES = 20;

/**
 * Layout under the prefix: `tool:{id}` (current JSON), `tool:{id}:versions` (hash version → JSON),
 * `tenant:{t}:names` (hash name → id), `tenant:{t}:ids` (sorted set of ids, lexicographic order).
 */
export class RedisToolStore implements ToolStore, Resealable {
	/**
	 * With an audit log, every audited write appends its entry in the same script or MULTI. With a
	 * secret box, the secrets of every tool's config are stored sealed (AES-256-GCM) and opened on read.
	 */
	constructor(
		private readonly redis: Redis,
		private readonly prefix: string,
		private readonly auditLog?: RedisAuditLog,
		private readonly secretBox?: SecretBox
	) {}

	private toolKey = (id: string) => `${this.prefix}tool:${id}`;
	private versionsKey = (id: string) => `${this.prefix}tool:${id}:versions`;
	private namesKey = (tenantId: string) => `${this.prefix}tenant:${tenantId}:names`;
	private idsKey = (tenantId: string) => `${this.prefix}tenant:${tenantId}:ids`;
	private revisionKey = (tenantId: string) => `${this.prefix}tenant:${tenantId}:revision`;

	async create(tool: StoredTool, audit?: AuditHook): Promise<StoredTool> {
		const json = this.serialize(tool);
		const draft = audit && this.auditLog ? audit(tool) : null;
		const entry = draft && this.auditLog!.scriptArgs(draft);
		const created = await this.redis.eval(
			entry ? CREATE_AUDITED_SCRIPT : CREATE_SCRIPT,
			entry ? 6 : 5,
			this.namesKey(tool.tenant_id),
			this.toolKey(tool.id),
			this.idsKey(tool.tenant_id),
			this.versionsKey(tool.id),
			this.revisionKey(tool.tenant_id),
			...(entry ? [entry.key] : []),
			tool.name,
			tool.id,
			json,
			String(tool.version),
			...(entry ? entry.args : [])
		);
		if (created !== 1) throw nameTaken(tool.name);
		return tool;
	}

	async get(id: string): Promise<StoredTool | null> {
		return this.parse(await this.redis.get(this.toolKey(id)));
	}

	async getVersion(id: string, version: number): Promise<StoredTool | null> {
		return this.parse(await this.redis.hget(this.versionsKey(id), String(version)));
	}

	async versions(id: string): Promise<StoredTool[]> {
		const stored = await this.redis.hvals(this.versionsKey(id));
		return stored.map(json => this.parse(json)!).sort((a, b) => b.version - a.version);
	}

	async findByName(tenantId: string, name: string): Promise<StoredTool | null> {
		const id = await this.redis.hget(this.namesKey(tenantId), name);
		return id ? this.get(id) : null;
	}

	list(tenantIds: string[], filter: ToolFilter, limit: number, afterId?: string): Promise<ToolPage> {
		return listMerged(
			{
				idsAfter: (tenantId, after, count) =>
					this.redis.zrangebylex(
						this.idsKey(tenantId),
						after === undefined ? "-" : `(${after}`,
						"+",
						"LIMIT",
						0,
						count
					),
				getMany: async ids =>
					ids.length ? (await this.redis.mget(ids.map(this.toolKey))).map(this.parse) : []
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
		return this.transaction(id, async (conn, current) => {
			if (expectedVersion !== undefined && expectedVersion !== current.version)
				throw staleVersion(current.version);
			const next = change(current);
			if (next === current) return current;
			const names = this.namesKey(next.tenant_id);
			const renamed = next.name !== current.name;
			if (renamed) {
				await conn.watch(names);
				if (await conn.hexists(names, next.name)) throw nameTaken(next.name);
			}
			const tx = conn.multi();
			if (renamed) tx.hdel(names, current.name).hset(names, next.name, id);
			const json = this.serialize(next);
			tx.set(this.toolKey(id), json)
				.hset(this.versionsKey(id), String(next.version), json)
				.incr(this.revisionKey(next.tenant_id));
			this.appendAudit(tx, audit, next);
			return (await tx.exec()) ? next : undefined;
		});
	}

	async remove(id: string, audit?: AuditHook): Promise<StoredTool | null> {
		return this.transaction(id, async (conn, current) => {
			const tx = conn
				.multi()
				.del(this.toolKey(id), this.versionsKey(id))
				.hdel(this.namesKey(current.tenant_id), current.name)
				.zrem(this.idsKey(current.tenant_id), id)
				.incr(this.revisionKey(current.tenant_id));
			this.appendAudit(tx, audit, current);
			return (await tx.exec()) ? current : undefined;
		});
	}

	/** The JSON stored for a tool: its config's secrets sealed when a box is configured. */
	private serialize(tool: StoredTool): string {
		return JSON.stringify(
			this.secretBox ? { ...tool, config: this.secretBox.sealConfig(tool.config) } : tool
		);
	}

	private parse = (json: string | null): StoredTool | null => {
		if (!json) return null;
		const tool = JSON.parse(json) as StoredTool;
		if (this.secretBox) tool.config = this.secretBox.openConfig(tool.config);
		return tool;
	};

	/**
	 * Seals again, under the box's current key, every stored secret (current tools and their history)
	 * sealed under an earlier key or stored in clear. Resolves how many records changed, per tenant.
	 */
	async reseal(): Promise<ResealResult> {
		const box = this.secretBox;
		if (!box) return { key_id: "", resealed: new Map() };
		const resealed = await resealRecords(this.redis, `${this.prefix}tool:*`, json => {
			const tool = JSON.parse(json) as StoredTool;
			const resealed = JSON.stringify({ ...tool, config: box.resealConfig(tool.config) });
			return resealed === json ? null : { json: resealed, tenantId: tool.tenant_id };
		});
		return { key_id: box.keyId, resealed };
	}

	private appendAudit(tx: ChainableCommander, audit: AuditHook | undefined, tool: StoredTool) {
		const draft = audit && this.auditLog ? audit(tool) : null;
		if (draft) this.auditLog!.appendIn(tx, draft);
	}

	/**
	 * Optimistic transaction on one tool: WATCH its key on a dedicated connection, read it, and let
	 * `attempt` EXEC its writes. A concurrent writer aborts the EXEC (`attempt` resolves undefined)
	 * and the attempt runs again on the new state, so version checks and name indexes stay atomic.
	 */
	private async transaction<T>(
		id: string,
		attempt: (conn: Redis, current: StoredTool) => Promise<T | undefined>
	): Promise<T | null> {
		const conn = this.redis.duplicate();
		// Its commands reject when Redis is down; the outage is logged by the main connection.
		conn.on("error", () => undefined);
		try {
			for (let tries = 0; tries < MAX_TRANSACTION_RETRIES; tries++) {
				await conn.watch(this.toolKey(id));
				const current = this.parse(await conn.get(this.toolKey(id)));
				if (!current) return null;
				const done = await attempt(conn, current);
				if (done !== undefined) return done;
			}
			throw conflict("The tool is being changed concurrently; try again");
		} finally {
			// Closing the connection also drops any WATCH an early return or a throw left behind.
			conn.disconnect();
		}
	}

	async revisions(tenantIds: string[]): Promise<number[]> {
		return (await this.redis.mget(tenantIds.map(this.revisionKey))).map(value => Number(value ?? 0));
	}

	async countByTenant(): Promise<Record<string, number>> {
		const counts: Record<string, number> = {};
		const [head, tail] = [`${this.prefix}tenant:`, ":ids"];
		let cursor = "0";
		do {
			const [next, keys] = await this.redis.scan(cursor, "MATCH", `${head}*${tail}`, "COUNT", 500);
			cursor = next;
			const sizes = await Promise.all(keys.map(key => this.redis.zcard(key)));
			keys.forEach((key, i) => (counts[key.slice(head.length, -tail.length)] = sizes[i]));
		} while (cursor !== "0");
		return counts;
	}
}
