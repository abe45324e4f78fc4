import { MemoryRateLimiter, RedisRateLimiter, type RateLimiter } from "../../../lib/rate-limiter";
import { connectRedis, type RedisClient } from "../../../lib/redis";
import { dropPrefix, uniquePrefix } from "../backends";
import { eventually } from "../eventually";

/**
 * The conformance suite of the rate limiter: memory when `redisUrl()` is undefined, else the Redis
 * (or `redis+cluster://` cluster) it names, read when the suite runs.
 */
export function rateLimiterSuite(redisUrl: () => string | undefined): void {
	let redis: RedisClient | undefined;
	let prefix: string;
	const limiter = (limit: number, windowMs: number): RateLimiter =>
		redis ? new RedisRateLimiter(redis, prefix, limit, windowMs) : new MemoryRateLimiter(limit, windowMs);

	beforeEach(() => {
		prefix = uniquePrefix();
		redis = redisUrl() ? connectRedis(redisUrl()!) : undefined;
	});

	afterEach(async () => {
		await redis?.quit();
		if (redisUrl()) await dropPrefix(redisUrl()!, prefix);
	});

	it("allows the limit within a window, then refuses with the seconds left", async () => {
		const limit = limiter(3, 60000);
		const decisions = [];
		for (let i = 0; i < 4; i++) decisions.push(await limit.hit("acme"));
		expect(decisions.map(d => d.allowed)).toEqual([true, true, true, false]);
		expect(decisions[3].retryAfter).toBeGreaterThanOrEqual(59);
		expect(decisions[3].retryAfter).toBeLessThanOrEqual(60);
	});

	it("counts every key on its own, also when many hit at once", async () => {
		const limit = limiter(50, 60000);
		const tenants = Array.from({ length: 10 }, (_, i) => `tenant-${i}`);
		const decisions = await Promise.all(
			tenants.flatMap(tenant =>
				Array.from({ length: 60 }, () => limit.hit(tenant).then(d => [tenant, d.allowed]))
			)
		);
		for (const tenant of tenants)
			expect(decisions.filter(([t, allowed]) => t === tenant && allowed)).toHaveLength(50);
	});

	it("allows again once the window ended", async () => {
		const limit = limiter(1, 300);
		expect((await limit.hit("acme")).allowed).toBe(true);
		expect((await limit.hit("acme")).allowed).toBe(false);
		await eventually(async () => expect((await limit.hit("acme")).allowed).toBe(true), 5000);
	});
}
