import { scanKeys, type RedisClient } from "../redis";

/**
 * How one record is sealed again: its JSON with every secret under the current key (null when nothing
 * changes), and the tenant it belongs to.
 */
/** What one pass of a store's reseal did: the current key's id, and how many records it rewrote per tenant. */
export interface ResealResult {
	key_id: string;
	resealed: Map<string, number>;
}

/** A store that keeps secrets sealed at rest and can seal them again under the current key. */
export interface Resealable {
	reseal(): Promise<ResealResult>;
}

export const isResealable = (store: unknown): store is Resealable =>
	typeof (store as Partial<Resealable> | null)?.reseal === "function";

export type Resealer = (json: string) => { json: string; tenantId: string } | null;

/** Writes ARGV[2] over ARGV[1] (a string, or the hash field ARGV[3]) only if unchanged: 1 written. */
const COMPARE_AND_SET = `
local current
if ARGV[3] then current = redis.call('HGET', KEYS[1], ARGV[3]) else current = redis.call('GET', KEYS[1]) end
if current ~= ARGV[1] then return 0 end
if ARGV[3] then redis.call('HSET', KEYS[1], ARGV[3], ARGV[2]) else redis.call('SET', KEYS[1], ARGV[2]) end
return 1
`;

/**
 * Rewrites every record under `pattern` (string keys, and every field of hash keys) that `reseal`
 * changes, on every master of a cluster. Each record is rewritten only if unchanged since read (one
 * script on its key), so a concurrent change wins (and is already sealed under the current key).
 * Resolves how many records were rewritten, per tenant.
 */
export async function resealRecords(
	redis: RedisClient,
	pattern: string,
	reseal: Resealer
): Promise<Map<string, number>> {
	const counts = new Map<string, number>();
	for await (const keys of scanKeys(redis, pattern, 200))
		for (const key of keys)
			for (const tenantId of await resealKey(redis, key, reseal))
				counts.set(tenantId, (counts.get(tenantId) ?? 0) + 1);
	return counts;
}

/** The tenants of the records rewritten under `key` (one entry per record); none where a writer won. */
async function resealKey(redis: RedisClient, key: string, reseal: Resealer): Promise<string[]> {
	const type = await redis.type(key);
	const records: [json: string | null, field?: string][] =
		type === "hash"
			? Object.entries(await redis.hgetall(key)).map(([field, json]) => [json, field])
			: type === "string"
				? [[await redis.get(key)]]
				: [];
	const tenants: string[] = [];
	for (const [json, field] of records) {
		const resealed = json ? reseal(json) : null;
		if (!resealed) continue;
		const written = await redis.eval(
			COMPARE_AND_SET,
			1,
			key,
			json!,
			resealed.json,
			...(field ? [field] : [])
		);
		if (written === 1) tenants.push(resealed.tenantId);
	}
	return tenants;
}
