import { connectRedis, type RedisClient } from "../../lib/redis";
import { UsageStats } from "../../lib/usage-stats";
import { describeWithRedis, dropPrefix, uniquePrefix } from "../support/backends";

describeWithRedis("usage stats in Redis", () => {
	const url = process.env.TEST_REDIS_URL!;
	const prefix = uniquePrefix();
	let redis: RedisClient;

	beforeAll(() => {
		redis = connectRedis(url);
	});

	afterAll(async () => {
		await redis.quit();
		await dropPrefix(url, prefix);
	});

	it("adds fractional latencies into the shared hash, so another node reads the same averages", async () => {
		const writer = new UsageStats(redis, prefix);
		writer.record({ tenant_id: "acme", tool_id: "t1", status: "completed", execution_time_ms: 1.25 });
		writer.record({
			tenant_id: "acme",
			tool_id: "t1",
			status: "failed",
			error_type: "timeout",
			execution_time_ms: 2.5
		});
		await writer.close();

		const reader = new UsageStats(redis, prefix);
		const usage = await reader.get("acme", "t1");
		await reader.close();
		expect(usage).toMatchObject({ calls: 2, completed: 1, failed: 1, failures: { timeout: 1 } });
		expect(usage.latency_ms.avg).toBe(1.88);
		expect(usage.latency_ms.max).toBe(2.5);
	});
});
