import { slotTag, type RedisClient, runScript } from "./redis";

export interface RateDecision {
	allowed: boolean;
	/** Seconds until the current window ends (the `Retry-After` value when refused). */
	retryAfter: number;
}

/** Fixed-window request counting per key (a tenant). */
export interface RateLimiter {
	hit(key: string): Promise<RateDecision>;
}

export class MemoryRateLimiter implements RateLimiter {
	private readonly windows = new Map<string, { count: number; endsAt: number }>();

	constructor(
		private readonly limit: number,
		private readonly windowMs: number
	) {}

	async hit(key: string): Promise<RateDecision> {
		const now = Date.now();
		let window = this.windows.get(key);
		if (!window || window.endsAt <= now) {
			// Drop expired windows lazily so idle tenants do not accumulate.
			if (this.windows.size > 10000)
				for (const [k, w] of this.windows) if (w.endsAt <= now) this.windows.delete(k);
			window = { count: 0, endsAt: now + this.windowMs };
			this.windows.set(key, window);
		}
		window.count++;
		return {
			allowed: window.count <= this.limit,
			retryAfter: Math.max(1, Math.ceil((window.endsAt - now) / 1000))
		};
	}
}

/** INCR and the window's expiry in one script, so every gateway node shares one count per tenant. */
const HIT_SCRIPT = `
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return {count, redis.call('PTTL', KEYS[1])}
`;

export class RedisRateLimiter implements RateLimiter {
	constructor(
		private readonly redis: RedisClient,
		private readonly prefix: string,
		private readonly limit: number,
		private readonly windowMs: number
	) {}

	async hit(key: string): Promise<RateDecision> {
		const [count, ttl] = (await runScript(
			this.redis,
			HIT_SCRIPT,
			1,
			`${this.prefix}rate:${slotTag(this.redis, key)}`,
			String(this.windowMs)
		)) as [number, number];
		return { allowed: count <= this.limit, retryAfter: Math.max(1, Math.ceil(ttl / 1000)) };
	}
}
