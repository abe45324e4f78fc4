import { scanKeys, type RedisClient, runScript } from "../redis";
import type { SecretBox } from "../secret-box";

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
 * changes), and the tenant it belongs to.
 */
export type Resealer = (json: string) => { json: string; tenantId: string } | null;

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

/** Where a store's records are and how one is sealed again. */
export interface ResealPass {
	/** SCAN pattern of the record keys. */
	pattern: string;
	/** Holds the id of the key the last complete pass sealed every record under. */
	marker: string;
	/** For hash keys: the fields that hold records (every field when absent). */
	fields?: string[];
	reseal: Resealer;
}

/**
 * Seals again, under the box's current key, every record of `pass` sealed under an earlier key or
 * stored in clear, unless nothing can be: the last complete pass was under the current key and no
 * earlier key is configured. Every write since then sealed under the current key, and a record a node
 * on an earlier key wrote could not be opened here anyway; so a node restarts without reading every
 * record (all tasks of the last 24 h, all tools). Resolves how many records changed, per tenant.
 */
export async function resealStore(
	redis: RedisClient,
	box: SecretBox,
	pass: ResealPass
): Promise<ResealResult> {
	if (!box.hasPreviousKeys && (await redis.get(pass.marker)) === box.keyId)
		return { key_id: box.keyId, resealed: new Map() };
	const { resealed, complete } = await resealRecords(redis, pass);
	if (complete) await redis.set(pass.marker, box.keyId);
	return { key_id: box.keyId, resealed };
}

/**
 * Rewrites every record under `pattern` (string keys, and the record fields of hash keys) that
 * `reseal` changes, on every master of a cluster. Each record is rewritten by a script only if
 * unchanged since read: a concurrent change makes it read again and retry on the new state (already
 * current, it is left as it is). Resolves how many records were rewritten, per tenant, and whether
 * none was left because it kept changing.
 */
async function resealRecords(
	redis: RedisClient,
	{ pattern, fields: recordFields, reseal }: ResealPass
): Promise<{ resealed: Map<string, number>; complete: boolean }> {
	const resealed = new Map<string, number>();
	let complete = true;
	for await (const keys of scanKeys(redis, pattern, 200))
		for (const key of keys) {
			const type = await redis.type(key);
			const fields =
				type === "hash" ? (recordFields ?? (await redis.hkeys(key))) : type === "string" ? [undefined] : [];
			for (const field of fields) {
				const result = await resealRecord(redis, key, field, reseal);
				if (result === "busy") complete = false;
				else if (result !== "current")
					resealed.set(result.tenantId, (resealed.get(result.tenantId) ?? 0) + 1);
			}
		}
	return { resealed, complete };
}

/** What became of one record: rewritten (for its tenant), already current, or still changing. */
type RecordResult = { tenantId: string } | "current" | "busy";

async function resealRecord(
	redis: RedisClient,
	key: string,
	field: string | undefined,
	reseal: Resealer
): Promise<RecordResult> {
	for (let tries = 0; tries < MAX_TRIES; tries++) {
		const json = field === undefined ? await redis.get(key) : await redis.hget(key, field);
		const resealed = json ? reseal(json) : null;
		if (!resealed) return "current";
		const args = [json!, resealed.json, ...(field === undefined ? [] : [field])];
		if ((await runScript(redis, COMPARE_AND_SET, 1, key, ...args)) === 1)
			return { tenantId: resealed.tenantId };
	}
	return "busy";
}
