import { scanKeys, type RedisClient, runScript } from "../redis";

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

/**
 * How one record is sealed again: its JSON with every secret under the current key (null when nothing
 * changes), and the tenant it belongs to. `field` names the hash field the record is in, if any.
 */
export type Resealer = (json: string, field?: string) => { json: string; tenantId: string } | null;

/** A record that keeps changing under the pass is left for the next start. */
const MAX_TRIES = 10;

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
 * changes, on every master of a cluster. Each record is rewritten by a script only if unchanged since
 * read: a concurrent change makes it read again and retry on the new state (already current, it is
 * left as it is). Resolves how many records were rewritten, per tenant.
 */
export async function resealRecords(
	redis: RedisClient,
	pattern: string,
	reseal: Resealer
): Promise<Map<string, number>> {
	const counts = new Map<string, number>();
	for await (const keys of scanKeys(redis, pattern, 200))
		for (const key of keys) {
			const type = await redis.type(key);
			const fields = type === "hash" ? await redis.hkeys(key) : type === "string" ? [undefined] : [];
			for (const field of fields) {
				const tenantId = await resealRecord(redis, key, field, reseal);
				if (tenantId !== null) counts.set(tenantId, (counts.get(tenantId) ?? 0) + 1);
			}
		}
	return counts;
}

/** The tenant of the record when it was rewritten; null when it needed nothing (or kept changing). */
async function resealRecord(
	redis: RedisClient,
	key: string,
	field: string | undefined,
	reseal: Resealer
): Promise<string | null> {
	for (let tries = 0; tries < MAX_TRIES; tries++) {
		const json = field === undefined ? await redis.get(key) : await redis.hget(key, field);
		const resealed = json ? reseal(json, field) : null;
		if (!resealed) return null;
		const args = [json!, resealed.json, ...(field === undefined ? [] : [field])];
		if ((await runScript(redis, COMPARE_AND_SET, 1, key, ...args)) === 1) return resealed.tenantId;
	}
	return null;
}
