import Redis from "ioredis";
import { MemoryProbeSchedule } from "../../lib/health/memory-probe-schedule";
import { nextProbeDelay, type ProbeSchedule } from "../../lib/health/probe-schedule";
import { RedisProbeSchedule } from "../../lib/health/redis-probe-schedule";
import { BACKENDS, dropPrefix, uniquePrefix } from "../support/backends";

describe("nextProbeDelay", () => {
	const backoff = { initialMs: 60000, maxMs: 3600000 };
	it("starts at the initial delay and doubles up to the maximum", () => {
		const delays: number[] = [];
		let last: number | undefined;
		for (let i = 0; i < 9; i++) delays.push((last = nextProbeDelay(last, backoff)));
		expect(delays.map(ms => ms / 60000)).toEqual([1, 2, 4, 8, 16, 32, 60, 60, 60]);
	});
});

describe.each(BACKENDS)("ProbeSchedule on $name", ({ redisUrl }) => {
	let schedule: ProbeSchedule;
	let redis: Redis | undefined;
	const prefix = uniquePrefix();

	beforeEach(() => {
		if (redisUrl) redis = new Redis(redisUrl);
		schedule = redis
			? new RedisProbeSchedule(redis, `${prefix}${Math.random()}:`)
			: new MemoryProbeSchedule();
	});
	afterEach(() => redis?.quit());
	afterAll(() => redisUrl && dropPrefix(redisUrl, prefix));

	it("hands out only due tools, oldest first, and holds a claim for claimMs", async () => {
		await schedule.schedule("later", 2000);
		await schedule.schedule("second", 1100);
		await schedule.schedule("first", 1000);
		expect(await schedule.claimDue(1500, 10000, 10)).toEqual(["first", "second"]);
		// Claimed: not handed out again until the claim runs out (a lost probe is retried then).
		expect(await schedule.claimDue(2000, 10000, 10)).toEqual(["later"]);
		expect(await schedule.claimDue(11500, 10000, 10)).toEqual(["first", "second"]);
		expect(await schedule.size()).toBe(3);
	});

	it("moves a rescheduled tool and forgets a removed one", async () => {
		await schedule.schedule("a", 1000);
		await schedule.schedule("a", 5000);
		await schedule.schedule("b", 1000);
		await schedule.remove("b");
		expect(await schedule.claimDue(2000, 1000, 10)).toEqual([]);
		expect(await schedule.claimDue(5000, 1000, 10)).toEqual(["a"]);
		expect(await schedule.size()).toBe(1);
	});

	it("gives each due tool to one of two concurrent claimers", async () => {
		for (let i = 0; i < 50; i++) await schedule.schedule(`t${i}`, i);
		const [one, two] = await Promise.all([
			schedule.claimDue(100, 1000, 30),
			schedule.claimDue(100, 1000, 30)
		]);
		expect(new Set([...one, ...two]).size).toBe(50);
		expect(one.length + two.length).toBe(50);
	});
});
