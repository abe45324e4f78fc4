import { getMany, type RedisClient, runScript } from "../redis";
import type { ApiKeyRecord } from "../../types/wire";
import type { KeyStore } from "./key-store";

/** Sets `revoked_at` once, server-side, so concurrent revocations keep the first time. */
const REVOKE_SCRIPT = `
local json = redis.call('GET', KEYS[1])
if not json then return nil end
local record = cjson.decode(json)
if record.revoked_at == nil or record.revoked_at == cjson.null then
  record.revoked_at = ARGV[1]
  json = cjson.encode(record)
  redis.call('SET', KEYS[1], json)
end
return json
`;

/**
 * Layout under the prefix: `key:{key_id}` → JSON record; `keys:{tenant}` → sorted set of the
 * tenant's key ids by creation; `keys-used:{tenant}` → hash key id → last use. The record is keyed
 * by its id alone (authentication knows no tenant yet), so it may sit in another cluster slot.
 */
export class RedisKeyStore implements KeyStore {
	constructor(
		private readonly redis: RedisClient,
		private readonly prefix: string
	) {}

	private keyKey = (keyId: string) => `${this.prefix}key:${keyId}`;

	private tenantKeys = (tenantId: string) => `${this.prefix}keys:{${tenantId}}`;
	private tenantLastUsed = (tenantId: string) => `${this.prefix}keys-used:{${tenantId}}`;

	async create(record: ApiKeyRecord): Promise<void> {
		// Two slots on a cluster, so two writes: listed first, so a key that works is always listed (a
		// listed id without a record is skipped by `list`).
		await this.redis.zadd(this.tenantKeys(record.tenant_id), Date.parse(record.created_at), record.key_id);
		await this.redis.set(this.keyKey(record.key_id), JSON.stringify(record));
	}

	async list(tenantId: string) {
		const ids = await this.redis.zrange(this.tenantKeys(tenantId), 0, -1);
		if (ids.length === 0) return [];
		const [records, used] = await Promise.all([
			getMany(this.redis, ids.map(this.keyKey)),
			this.redis.hmget(this.tenantLastUsed(tenantId), ...ids)
		]);
		return records.flatMap((json, i) =>
			json ? [{ ...(JSON.parse(json) as ApiKeyRecord), last_used_at: used[i] ?? null }] : []
		);
	}

	async touch(tenantId: string, keyId: string, at: string): Promise<void> {
		await this.redis.hset(this.tenantLastUsed(tenantId), keyId, at);
	}

	async get(keyId: string): Promise<ApiKeyRecord | null> {
		const json = await this.redis.get(this.keyKey(keyId));
		return json ? (JSON.parse(json) as ApiKeyRecord) : null;
	}

	async revoke(keyId: string, at: string): Promise<ApiKeyRecord | null> {
		const json = (await runScript(this.redis, REVOKE_SCRIPT, 1, this.keyKey(keyId), at)) as string | null;
		return json ? (JSON.parse(json) as ApiKeyRecord) : null;
	}
}
