import type { StoredTool } from "../../types/wire";
import { conflict, nameTaken, staleVersion } from "../errors";
import { listMerged } from "./tool-page";
import { luaAppend, type RedisAuditLog } from "../audit/redis-audit-log";
import { getMany, isCluster, scanKeys, slotTag, type RedisClient, runScript } from "../redis";
import type { SecretBox } from "../secret-box";
import { resealStore, type Resealable, type ResealResult } from "./reseal";
import { type AuditHook, type ToolFilter, type ToolPage, type ToolStore } from "./tool-store";

/** The audit entry, when the write has one, appended to KEYS[k] (ARGV[a..a+2], see RedisAuditLog.scriptArgs). */
const audited = (script: string, keyIndex: number, argIndex: number) => ({
	plain: `${script}\nreturn 1`,
	audited: `${script}\n${luaAppend(keyIndex, argIndex)}\nreturn 1`
});

/** HSETNX on the tenant's name index decides the race; the rest is written only by the winner. */
const CREATE = audited(
	`
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 0 then return 0 end
redis.call('SET', KEYS[2], ARGV[3])
redis.call('ZADD', KEYS[3], 0, ARGV[2])
redis.call('HSET', KEYS[4], ARGV[4], ARGV[3])
redis.call('INCR', KEYS[5])`,
	6,
	5
);

/**
 * Replaces the tool if it is still the JSON read (else -1: read again), taking the new name in the
 * tenant's index when it changes (-2 when taken). KEYS tool, versions, names, revision.
 */
const UPDATE = audited(
	`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
if ARGV[4] ~= ARGV[5] then
  if redis.call('HSETNX', KEYS[3], ARGV[5], ARGV[6]) == 0 then return -2 end
  redis.call('HDEL', KEYS[3], ARGV[4])
end
redis.call('SET', KEYS[1], ARGV[2])
redis.call('HSET', KEYS[2], ARGV[3], ARGV[2])
redis.call('INCR', KEYS[4])`,
	5,
	7
);

/** Deletes the tool if it is still the JSON read (else -1). KEYS tool, versions, names, ids, revision. */
const REMOVE = audited(
	`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('HDEL', KEYS[3], ARGV[2])
redis.call('ZREM', KEYS[4], ARGV[3])
redis.call('INCR', KEYS[5])`,
	6,
	4
);

const MAX_TRANSACTION_RETRIES = 20;

/**
 * Layout under the prefix: `tool:{id}` (current JSON), `tool:{id}:versions` (hash version → JSON),
 * `tenant:{t}:names` (hash name → id), `tenant:{t}:ids` (sorted set of ids, lexicographic order),
 * `tenant:{t}:revision` (write counter). On a cluster every key of a tenant carries its hash tag
 * (`tool:{tenant}:{id}`, `tenant:{tenant}:names`, … and its audit stream), so each write is one
 * script in one slot, and `tool-home:{id}` names the tenant of a tool id for reads by id.
 * Writes are scripts that compare the JSON read before, so no connection holds a WATCH.
 */
export class RedisToolStore implements ToolStore, Resealable {
	private readonly clustered: boolean;

	/**
	 * With an audit log, every audited write appends its entry in the same script. With a secret box,
	 * the secrets of every tool's config are stored sealed (AES-256-GCM) and opened on read.
	 */
	constructor(
		private readonly redis: RedisClient,
		private readonly prefix: string,
		private readonly auditLog?: RedisAuditLog,
		private readonly secretBox?: SecretBox
	) {
		this.clustered = isCluster(redis);
	}

	private toolKey = (tenantId: string, id: string) =>
		`${this.prefix}tool:${this.clustered ? `${slotTag(this.redis, tenantId)}:` : ""}${id}`;
	private versionsKey = (tenantId: string, id: string) => `${this.toolKey(tenantId, id)}:versions`;
	private tenantKey = (tenantId: string, name: string) =>
		`${this.prefix}tenant:${slotTag(this.redis, tenantId)}:${name}`;
	private homeKey = (id: string) => `${this.prefix}tool-home:${id}`;

	/** The key of a tool by id alone (on a cluster through its home entry), or null when unknown. */
	private async locate(id: string): Promise<string | null> {
		if (!this.clustered) return this.toolKey("", id);
		const tenantId = await this.redis.get(this.homeKey(id));
		return tenantId === null ? null : this.toolKey(tenantId, id);
	}

	private auditArgs(audit: AuditHook | undefined, tool: StoredTool) {
		const draft = audit && this.auditLog ? audit(tool) : null;
		return draft ? this.auditLog!.scriptArgs(draft) : null;
	}

	async create(tool: StoredTool, audit?: AuditHook): Promise<StoredTool> {
		const json = this.serialize(tool);
		const entry = this.auditArgs(audit, tool);
		if (this.clustered) await this.redis.set(this.homeKey(tool.id), tool.tenant_id);
		const created = await runScript(
			this.redis,
			entry ? CREATE.audited : CREATE.plain,
			entry ? 6 : 5,
			this.tenantKey(tool.tenant_id, "names"),
			this.toolKey(tool.tenant_id, tool.id),
			this.tenantKey(tool.tenant_id, "ids"),
			this.versionsKey(tool.tenant_id, tool.id),
			this.tenantKey(tool.tenant_id, "revision"),
			...(entry ? [entry.key] : []),
			tool.name,
			tool.id,
			json,
			String(tool.version),
			...(entry ? entry.args : [])
		);
		if (created !== 1) {
			if (this.clustered) await this.redis.del(this.homeKey(tool.id));
			throw nameTaken(tool.name);
		}
		return tool;
	}

	async get(id: string): Promise<StoredTool | null> {
		const key = await this.locate(id);
		return key ? this.parse(await this.redis.get(key)) : null;
	}

	async getVersion(id: string, version: number): Promise<StoredTool | null> {
		const key = await this.locate(id);
		return key ? this.parse(await this.redis.hget(`${key}:versions`, String(version))) : null;
	}

	async versions(id: string): Promise<StoredTool[]> {
		const key = await this.locate(id);
		const stored = key ? await this.redis.hvals(`${key}:versions`) : [];
		return stored.map(json => this.parse(json)!).sort((a, b) => b.version - a.version);
	}

	async findByName(tenantId: string, name: string): Promise<StoredTool | null> {
		const id = await this.redis.hget(this.tenantKey(tenantId, "names"), name);
		return id ? this.parse(await this.redis.get(this.toolKey(tenantId, id))) : null;
	}

	list(tenantIds: string[], filter: ToolFilter, limit: number, afterId?: string): Promise<ToolPage> {
		const tenantOf = new Map<string, string>();
		return listMerged(
			{
				idsAfter: async (tenantId, after, count) => {
					const ids = await this.redis.zrangebylex(
						this.tenantKey(tenantId, "ids"),
						after === undefined ? "-" : `(${after}`,
						"+",
						"LIMIT",
						0,
						count
					);
					for (const id of ids) tenantOf.set(id, tenantId);
					return ids;
				},
				getMany: async ids =>
					(
						await getMany(
							this.redis,
							ids.map(id => this.toolKey(tenantOf.get(id)!, id))
						)
					).map(this.parse)
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
		return this.compareAndSet(id, async (key, json, current) => {
			if (expectedVersion !== undefined && expectedVersion !== current.version)
				throw staleVersion(current.version);
			const next = change(current);
			if (next === current) return current;
			const entry = this.auditArgs(audit, next);
			const written = await runScript(
				this.redis,
				entry ? UPDATE.audited : UPDATE.plain,
				entry ? 5 : 4,
				key,
				`${key}:versions`,
				this.tenantKey(next.tenant_id, "names"),
				this.tenantKey(next.tenant_id, "revision"),
				...(entry ? [entry.key] : []),
				json,
				this.serialize(next),
				String(next.version),
				current.name,
				next.name,
				id,
				...(entry ? entry.args : [])
			);
			if (written === -2) throw nameTaken(next.name);
			return written === 1 ? next : undefined;
		});
	}

	async remove(id: string, audit?: AuditHook): Promise<StoredTool | null> {
		const removed = await this.compareAndSet(id, async (key, json, current) => {
			const entry = this.auditArgs(audit, current);
			const done = await runScript(
				this.redis,
				entry ? REMOVE.audited : REMOVE.plain,
				entry ? 6 : 5,
				key,
				`${key}:versions`,
				this.tenantKey(current.tenant_id, "names"),
				this.tenantKey(current.tenant_id, "ids"),
				this.tenantKey(current.tenant_id, "revision"),
				...(entry ? [entry.key] : []),
				json,
				current.name,
				id,
				...(entry ? entry.args : [])
			);
			return done === 1 ? current : undefined;
		});
		if (removed && this.clustered) await this.redis.del(this.homeKey(id));
		return removed;
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
		return resealStore(this.redis, box, {
			pattern: `${this.prefix}tool:*`,
			marker: `${this.prefix}tools-sealed-under`,
			reseal: json => {
				const tool = JSON.parse(json) as StoredTool;
				const resealed = JSON.stringify({ ...tool, config: box.resealConfig(tool.config) });
				return resealed === json ? null : { json: resealed, tenantId: tool.tenant_id };
			}
		});
	}

	/**
	 * Optimistic write of one tool: read its JSON and let `attempt` write only if it is still that
	 * JSON. A concurrent writer makes the attempt resolve undefined and it runs again on the new
	 * state, so version checks and name indexes stay atomic.
	 */
	private async compareAndSet<T>(
		id: string,
		attempt: (key: string, json: string, current: StoredTool) => Promise<T | undefined>
	): Promise<T | null> {
		const key = await this.locate(id);
		if (!key) return null;
		for (let tries = 0; tries < MAX_TRANSACTION_RETRIES; tries++) {
			const json = await this.redis.get(key);
			if (!json) return null;
			const done = await attempt(key, json, this.parse(json)!);
			if (done !== undefined) return done;
		}
		throw conflict("The tool is being changed concurrently; try again");
	}

	async revisions(tenantIds: string[]): Promise<number[]> {
		const keys = tenantIds.map(tenantId => this.tenantKey(tenantId, "revision"));
		return (await getMany(this.redis, keys)).map(value => Number(value ?? 0));
	}

	async countByTenant(): Promise<Record<string, number>> {
		const counts: Record<string, number> = {};
		const [head, tail] = [`${this.prefix}tenant:`, ":ids"];
		for await (const keys of scanKeys(this.redis, `${head}*${tail}`)) {
			const sizes = await Promise.all(keys.map(key => this.redis.zcard(key)));
			keys.forEach((key, i) => {
				const tag = key.slice(head.length, -tail.length);
				counts[this.clustered ? tag.slice(1, -1) : tag] = sizes[i];
			});
		}
		return counts;
	}
}
