import { createHash } from "node:crypto";
import Redis, { Cluster } from "ioredis";
import type { OutageLog } from "./dependency-watch";

/** A connection to one Redis or to a Redis Cluster; every store takes either. */
export type RedisClient = Redis | Cluster;

type ScriptArgument = string | number | Buffer;
/** SHA1 per script source, as Redis names scripts in its cache. */
const scriptShas = new Map<string, string>();

/**
 * `redis.eval(lua, numberOfKeys, ...keysAndArgs)`, sending the source only when Redis does not have
 * it: EVALSHA first, and EVAL (which also caches the script) when Redis answers NOSCRIPT: once per
 * Redis server and again after it restarts. With plain `eval` every call carries the whole source (up
 * to a few KB), which the client encodes and Redis hashes each time. A normal command either way, so
 * ioredis auto-pipelining and Cluster routing (by the first key) apply as they do to `eval`.
 */
export async function runScript(
	redis: RedisClient,
	lua: string,
	numberOfKeys: number,
	...keysAndArgs: ScriptArgument[]
): Promise<unknown> {
	let sha = scriptShas.get(lua);
	if (!sha) {
		sha = createHash("sha1").update(lua).digest("hex");
		scriptShas.set(lua, sha);
	}
	try {
		return await redis.evalsha(sha, numberOfKeys, ...keysAndArgs);
	} catch (err) {
		if (!(err instanceof Error && err.message.startsWith("NOSCRIPT"))) throw err;
		return redis.eval(lua, numberOfKeys, ...keysAndArgs);
	}
}

const CLUSTER_SCHEMES = ["redis+cluster:", "rediss+cluster:"];

/**
 * The seed nodes and credentials of a `redis+cluster://[user:pass@]host:port,host:port` URL, or null
 * for a plain `redis://` URL. Throws a message saying what is expected when a node is malformed.
 */
export function clusterNodes(
	url: string
): { nodes: { host: string; port: number }[]; username?: string; password?: string; tls: boolean } | null {
	const scheme = url.slice(0, url.indexOf("//"));
	if (!CLUSTER_SCHEMES.includes(scheme)) return null;
	const rest = url.slice(scheme.length + 2).replace(/\/.*$/, "");
	const at = rest.lastIndexOf("@");
	const [user, password] = at >= 0 ? rest.slice(0, at).split(":") : [];
	const nodes = rest
		.slice(at + 1)
		.split(",")
		.map(node => {
			const match = /^([^:,]+):(\d{1,5})$/.exec(node.trim());
			if (!match) throw new Error(`must list the cluster's nodes as host:port (got "${node}")`);
			return { host: match[1], port: Number(match[2]) };
		});
	return {
		nodes,
		username: user ? decodeURIComponent(user) : undefined,
		password: password ? decodeURIComponent(password) : undefined,
		tls: scheme === "rediss+cluster:"
	};
}

/** This process's clients that are out of reach, per Redis server (or cluster). */
const unreachable = new Map<string, Set<RedisClient>>();

/** How a single client's server is named in the log: `host:port/db`. */
function serverOf(client: Redis): string {
	const { host, port, db } = client.options;
	return `${host ?? "localhost"}:${port ?? 6379}/${db ?? 0}`;
}

/**
 * Tells an outage of the client's Redis once: one line when the first of this process's clients of
 * that server loses it, one when the last is connected again. Without an `error` listener ioredis
 * would print an "Unhandled error event" stack on every reconnect attempt.
 */
export function watchRedis<T extends RedisClient>(
	client: T,
	log: OutageLog,
	server = client instanceof Redis ? serverOf(client) : "cluster"
): T {
	client.on("error", (err: Error) => {
		const down = unreachable.get(server) ?? new Set<RedisClient>();
		if (down.size === 0)
			log.warn(`Redis ${server} is unreachable (${err.message}); requests that need it answer 503`);
		down.add(client);
		unreachable.set(server, down);
	});
	client.on("ready", () => {
		const down = unreachable.get(server);
		if (!down?.delete(client) || down.size > 0) return;
		unreachable.delete(server);
		log.info(`Redis ${server} is reachable again`);
	});
	// A client closed on purpose leaves the outage to the others.
	client.on("end", () => unreachable.get(server)?.delete(client));
	return client;
}

/** For clients whose outages the caller reports itself (tests, tools). */
const QUIET: OutageLog = { warn: () => undefined, info: () => undefined };

/**
 * One ioredis client per owner: a `Cluster` for a `redis+cluster://` URL, else a single connection.
 * Commands fail fast while Redis is down instead of queueing forever, so a request gets an error
 * (and /health/ready reports it) rather than hanging. Auto-pipelining batches the commands issued
 * in one tick (per node in a cluster), so stores may issue one command per key instead of MGET.
 */
export function connectRedis(url: string, log: OutageLog = QUIET): RedisClient {
	const cluster = clusterNodes(url);
	if (!cluster)
		return watchRedis(new Redis(url, { maxRetriesPerRequest: 2, enableAutoPipelining: true }), log);
	const { nodes, username, password, tls } = cluster;
	return watchRedis(
		new Cluster(nodes, {
			enableAutoPipelining: true,
			redisOptions: { maxRetriesPerRequest: 2, username, password, ...(tls ? { tls: {} } : {}) }
		}),
		log,
		`cluster ${nodes.map(({ host, port }) => `${host}:${port}`).join(",")}`
	);
}

export const isCluster = (redis: RedisClient): redis is Cluster => redis instanceof Cluster;

/**
 * Scheduling shards of the task queue and outbox: one on a single Redis (one global fair
 * rotation), sixteen on a cluster, so the rotation, leases and outbox spread over the masters.
 */
export const schedulingShards = (redis: RedisClient): number => (isCluster(redis) ? 16 : 1);

/** The shard of a tenant among `shards` (FNV-1a of its id): all of a tenant's tasks share one. */
export function shardOf(tenantId: string, shards: number): number {
	if (shards === 1) return 0;
	let hash = 0x811c9dc5;
	for (let i = 0; i < tenantId.length; i++) hash = Math.imul(hash ^ tenantId.charCodeAt(i), 0x01000193);
	return (hash >>> 0) % shards;
}

/** The string values of `keys`: one MGET on a single Redis, one GET per key on a cluster (keys in many slots). */
export function getMany(redis: RedisClient, keys: string[]): Promise<(string | null)[]> {
	if (keys.length === 0) return Promise.resolve([]);
	return isCluster(redis) ? Promise.all(keys.map(key => redis.get(key))) : redis.mget(keys);
}

/** Every key matching `pattern`, on every master of a cluster (SCAN sees one node only). */
export async function* scanKeys(redis: RedisClient, pattern: string, count = 500): AsyncIterable<string[]> {
	const nodes = isCluster(redis) ? redis.nodes("master") : [redis];
	for (const node of nodes) {
		let cursor = "0";
		do {
			const [next, keys] = await node.scan(cursor, "MATCH", pattern, "COUNT", count);
			cursor = next;
			if (keys.length) yield keys;
		} while (cursor !== "0");
	}
}

/**
 * `id` as it appears in key names: on a cluster as a hash tag (`{id}`), which keeps every key of one
 * tenant (or scheduling shard) in one slot so a script may touch them all; on a single Redis bare, so
 * key names stay as they always were. A tenant id with braces still yields one slot per tenant.
 */
export const slotTag = (redis: RedisClient, id: string): string => (isCluster(redis) ? `{${id}}` : id);
