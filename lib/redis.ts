import Redis from "ioredis";

/**
 * One ioredis client per owner. Commands fail fast while Redis is down instead of queueing
 * forever, so a request gets an error (and /health/ready reports it) rather than hanging.
 */
export function connectRedis(url: string): Redis {
	return new Redis(url, { maxRetriesPerRequest: 2, enableAutoPipelining: true });
}
