import type Redis from "ioredis";
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

/** Layout under the prefix: `key:{key_id}` → JSON record. */
export class RedisKeyStore implements KeyStore {
	constructor(
		private readonly redis: Redis,
		private readonly prefix: string
	) {}

	private keyKey = (keyId: string) => `${this.prefix}key:${keyId}`;

	async create(record: ApiKeyRecord): Promise<void> {
		await this.redis.set(this.keyKey(record.key_id), JSON.stringify(record));
	}

	async get(keyId: string): Promise<ApiKeyRecord | null> {
		const json = await this.redis.get(this.keyKey(keyId));
		return json ? (JSON.parse(json) as ApiKeyRecord) : null;
	}

	async revoke(keyId: string, at: string): Promise<ApiKeyRecord | null> {
		const json = (await this.redis.eval(REVOKE_SCRIPT, 1, this.keyKey(keyId), at)) as string | null;
		return json ? (JSON.parse(json) as ApiKeyRecord) : null;
	}
}
