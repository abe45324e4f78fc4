import Redis from "ioredis";
import { connect as connectNats } from "nats";
import type { Config } from "./config";
import { clusterNodes } from "./redis";

/** How long each dependency gets to answer at start; both together stay well under 30 s. */
const CHECK_TIMEOUT_MS = 10000;

/** A URL as it may be shown in a log line: without its user and password. */
export function displayUrl(raw: string): string {
	// A cluster's list of nodes is no single URL: only its credentials are dropped.
	if (clusterNodes(raw)) return raw.replace(/\/\/[^@/]*@/, "//");
	try {
		const url = new URL(raw);
		url.username = "";
		url.password = "";
		return url.toString();
	} catch {
		return "(unparsable URL)";
	}
}

const reason = (err: unknown): string => {
	const e = err as { code?: string; message?: string };
	return e.code && !e.message?.includes(e.code) ? `${e.code} ${e.message}` : (e.message ?? String(err));
};

/**
 * No retries and no offline queue: one attempt that fails fast, with its error handled here
 * (ioredis prints an "Unhandled error event" stack for every retry otherwise).
 */
const ONE_ATTEMPT = {
	lazyConnect: true,
	connectTimeout: CHECK_TIMEOUT_MS,
	maxRetriesPerRequest: 0,
	enableOfflineQueue: false,
	retryStrategy: () => null
};

async function checkRedis(url: string): Promise<string | null> {
	const cluster = clusterNodes(url);
	if (!cluster) return checkRedisNode(url, new Redis(url, ONE_ATTEMPT));
	// A cluster answers when one of its seed nodes does (the client learns the others from it).
	const { nodes, username, password, tls } = cluster;
	const failures = await Promise.all(
		nodes.map(({ host, port }) =>
			checkRedisNode(
				url,
				new Redis({ host, port, username, password, ...(tls ? { tls: {} } : {}), ...ONE_ATTEMPT })
			)
		)
	);
	return failures.includes(null) ? null : failures[0];
}

async function checkRedisNode(url: string, redis: Redis): Promise<string | null> {
	// The socket's error says why ("Connection is closed" is all `connect()` rejects with).
	let socketError: unknown;
	redis.on("error", err => (socketError = err));
	try {
		await redis.connect();
		await redis.ping();
		return null;
	} catch (err) {
		return `REDIS_URL ${displayUrl(url)}: Redis cannot be reached (${reason(socketError ?? err)})`;
	} finally {
		redis.disconnect();
	}
}

async function checkNats(servers: string): Promise<string | null> {
	try {
		const nc = await connectNats({
			servers: servers.split(","),
			timeout: CHECK_TIMEOUT_MS,
			reconnect: false
		});
		await nc.close();
		return null;
	} catch (err) {
		return `TRANSPORTER ${servers.split(",").map(displayUrl).join(",")}: NATS cannot be reached (${reason(err)})`;
	}
}

/**
 * Checks, once at start, that the Redis and NATS the node is configured for answer. Resolves one
 * line per dependency that does not, for the operator; none when all answer. The services' own
 * clients reconnect by themselves later: this only catches a wrong URL or a missing server at once.
 */
export async function unreachableDependencies(config: Config): Promise<string[]> {
	const checks: Promise<string | null>[] = [];
	if (config.redisUrl) checks.push(checkRedis(config.redisUrl));
	if (config.transporter?.startsWith("nats://")) checks.push(checkNats(config.transporter));
	return (await Promise.all(checks)).filter((line): line is string => line !== null);
}
