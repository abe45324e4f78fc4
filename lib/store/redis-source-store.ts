import { getMany, type RedisClient, runScript } from "../redis";
import type { ToolSource } from "../../types/wire";
import { conflict } from "../errors";
import type { SecretBox } from "../secret-box";
import { resealStore, type Resealable, type ResealResult } from "./reseal";
import { sourceNameTaken, type SourceStore } from "./source-store";

/** Writes ARGV[2] only if the record still is ARGV[1]: 1 written, 0 changed meanwhile or gone. */
const COMPARE_AND_SET = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2])
return 1
`;

/**
 * Layout under the prefix: `source:{id}` → JSON record, `source-names:{tenant}` → hash name → id,
 * `source-ids` → set of every id. Each command touches one key, so keys may live in any cluster
 * slot. Updates are optimistic: a lost race is retried on the new state.
 */
export class RedisSourceStore implements SourceStore, Resealable {
	/** With a secret box, header values are stored sealed (AES-256-GCM) and opened on read. */
	constructor(
		private readonly redis: RedisClient,
		private readonly prefix: string,
		private readonly secretBox?: SecretBox
	) {}

	private serialize(source: ToolSource): string {
		const box = this.secretBox;
		return JSON.stringify(
			box ? { ...source, headers: box.sealConfig({ headers: source.headers }).headers } : source
		);
	}

	private parse = (json: string): ToolSource => {
		const source = JSON.parse(json) as ToolSource;
		if (this.secretBox)
			source.headers = this.secretBox.openConfig({ headers: source.headers }).headers as Record<
				string,
				string
			>;
		return source;
	};

	/**
	 * Seals again, under the box's current key, every source's header values sealed under an earlier
	 * key or stored in clear. Resolves how many sources changed, per tenant.
	 */
	async reseal(): Promise<ResealResult> {
		const box = this.secretBox;
		if (!box) return { key_id: "", resealed: new Map() };
		return resealStore(this.redis, box, {
			pattern: this.recordKey("*"),
			marker: `${this.prefix}sources-sealed-under`,
			reseal: json => {
				const source = JSON.parse(json) as ToolSource;
				const headers = box.resealConfig({ headers: source.headers }).headers as Record<string, string>;
				const resealed = JSON.stringify({ ...source, headers });
				return resealed === json ? null : { json: resealed, tenantId: source.tenant_id };
			}
		});
	}

	private recordKey = (id: string) => `${this.prefix}source:${id}`;
	private namesKey = (tenantId: string) => `${this.prefix}source-names:{${tenantId}}`;
	private idsKey = () => `${this.prefix}source-ids`;

	async create(source: ToolSource): Promise<ToolSource> {
		const claimed = await this.redis.hsetnx(this.namesKey(source.tenant_id), source.name, source.id);
		if (!claimed) throw conflict(sourceNameTaken(source.name), { name: source.name });
		// The name decided the race; the record and the id set are in other cluster slots.
		await this.redis.set(this.recordKey(source.id), this.serialize(source));
		await this.redis.sadd(this.idsKey(), source.id);
		return source;
	}

	async get(id: string): Promise<ToolSource | null> {
		const json = await this.redis.get(this.recordKey(id));
		return json ? this.parse(json) : null;
	}

	async list(tenantId: string): Promise<ToolSource[]> {
		const ids = Object.values(await this.redis.hgetall(this.namesKey(tenantId)));
		if (ids.length === 0) return [];
		const records = await getMany(this.redis, ids.map(this.recordKey));
		return records
			.filter((json): json is string => json !== null)
			.map(this.parse)
			.sort((a, b) => a.name.localeCompare(b.name));
	}

	async ids(): Promise<string[]> {
		return this.redis.smembers(this.idsKey());
	}

	async update(id: string, change: (current: ToolSource) => ToolSource): Promise<ToolSource | null> {
		for (;;) {
			const json = await this.redis.get(this.recordKey(id));
			if (!json) return null;
			const next = change(this.parse(json));
			const written = await runScript(
				this.redis,
				COMPARE_AND_SET,
				1,
				this.recordKey(id),
				json,
				this.serialize(next)
			);
			if (written === 1) return next;
		}
	}

	async remove(id: string): Promise<ToolSource | null> {
		const source = await this.get(id);
		if (!source) return null;
		// Unlisted first, so a refresh never meets an id whose record is gone.
		await this.redis.srem(this.idsKey(), id);
		await this.redis.hdel(this.namesKey(source.tenant_id), source.name);
		await this.redis.del(this.recordKey(id));
		return source;
	}
}
