import type Redis from "ioredis";

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

/**
 * Rewrites every record under `pattern` (string keys, and every field of hash keys) that `reseal`
 * changes. Each key is rewritten under WATCH on its own connection: a concurrent change aborts the
 * rewrite, which is tried again on the new state (already current, it is left as it is). Resolves how
 * many records were rewritten, per tenant.
 */
export async function resealRecords(
	redis: Redis,
	pattern: string,
	reseal: Resealer
): Promise<Map<string, number>> {
	const counts = new Map<string, number>();
	const conn = redis.duplicate();
	// Its commands reject when Redis is down; the outage is logged by the main connection.
	conn.on("error", () => undefined);
	try {
		let cursor = "0";
		do {
			const [next, keys] = await redis.scan(cursor, "MATCH", pattern, "COUNT", 200);
			cursor = next;
			for (const key of keys) {
				let tenants: string[] | null = null;
				for (let tries = 0; tenants === null && tries < MAX_TRIES; tries++)
					tenants = await resealKey(conn, key, reseal);
				for (const tenantId of tenants ?? []) counts.set(tenantId, (counts.get(tenantId) ?? 0) + 1);
			}
		} while (cursor !== "0");
	} finally {
		conn.disconnect();
	}
	return counts;
}

/** The tenants of the records rewritten under `key` (one entry per record); null when a writer came between. */
async function resealKey(conn: Redis, key: string, reseal: Resealer): Promise<string[] | null> {
	await conn.watch(key);
	const tx = conn.multi();
	const tenants: string[] = [];
	const type = await conn.type(key);
	if (type === "hash") {
		for (const [field, json] of Object.entries(await conn.hgetall(key))) {
			const resealed = reseal(json, field);
			if (resealed) (tx.hset(key, field, resealed.json), tenants.push(resealed.tenantId));
		}
	} else if (type === "string") {
		const json = await conn.get(key);
		const resealed = json ? reseal(json) : null;
		if (resealed) (tx.set(key, resealed.json), tenants.push(resealed.tenantId));
	}
	if (tenants.length === 0) {
		tx.discard();
		await conn.unwatch();
		return [];
	}
	return (await tx.exec()) ? tenants : null;
}
