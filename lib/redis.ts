import Redis from "ioredis";
import type { OutageLog } from "./dependency-watch";

/** This process's clients that are out of reach, per Redis server. */
const unreachable = new Map<string, Set<Redis>>();

/**
 * Tells an outage of the client's Redis once: one line when the first of this process's clients of
 * that server loses it, one when the last is connected again. Without an `error` listener ioredis
 * would print an "Unhandled error event" stack on every reconnect attempt.
 */
export function watchRedis(client: Redis, log: OutageLog): Redis {
	const { host, port, db } = client.options;
	const server = `${host ?? "localhost"}:${port ?? 6379}/${db ?? 0}`;
	client.on("error", (err: Error) => {
		const down = unreachable.get(server) ?? new Set<Redis>();
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

/**
 * One ioredis client per owner. Commands fail fast while Redis is down instead of queueing
 * forever, so a request gets an error (and /health/ready reports it) rather than hanging.
 */
export function connectRedis(url: string, log: OutageLog): Redis {
	return watchRedis(new Redis(url, { maxRetriesPerRequest: 2, enableAutoPipelining: true }), log);
}
