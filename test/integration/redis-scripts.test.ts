import Redis from "ioredis";
import { runScript } from "../../lib/redis";
import { OwnRedisServer } from "../support/redis-server";

const ECHO = "return { KEYS[1], ARGV[1], ARGV[2] }";

/** A redis-server of the test's own: its command counters and script cache are this suite's alone. */
describe("runScript", () => {
	let server: OwnRedisServer;
	let redis: Redis;

	beforeAll(async () => {
		server = await OwnRedisServer.start();
		redis = new Redis(server.url);
	});

	afterAll(async () => {
		await redis.quit();
		await server.kill();
	});

	async function scriptCalls(): Promise<{ eval: number; evalsha: number }> {
		const info = await redis.info("commandstats");
		const calls = (command: string) =>
			Number(new RegExp(`cmdstat_${command}:calls=(\\d+)`).exec(info)?.[1] ?? 0);
		return { eval: calls("eval"), evalsha: calls("evalsha") };
	}

	it("answers what eval answers, with keys and arguments in their places", async () => {
		await expect(runScript(redis, ECHO, 1, "the-key", "one", 2)).resolves.toEqual(["the-key", "one", "2"]);
		await expect(redis.eval(ECHO, 1, "the-key", "one", 2)).resolves.toEqual(["the-key", "one", "2"]);
	});

	it("sends the source once, then only its SHA, from every connection", async () => {
		const other = new Redis(server.url);
		try {
			await redis.script("FLUSH");
			await redis.config("RESETSTAT");
			for (let i = 0; i < 3; i++) await runScript(redis, ECHO, 1, "k", "v", i);
			for (let i = 0; i < 3; i++) await runScript(other, ECHO, 1, "k", "v", i);
			// The first SHA is refused (NOSCRIPT), the source follows; the five calls after it send the SHA.
			expect(await scriptCalls()).toEqual({ eval: 1, evalsha: 6 });
		} finally {
			await other.quit();
		}
	});

	it("sends the source again when Redis has lost its scripts (a restart, SCRIPT FLUSH)", async () => {
		await runScript(redis, ECHO, 1, "k", "v", "w");
		await redis.script("FLUSH");
		await redis.config("RESETSTAT");
		await expect(runScript(redis, ECHO, 1, "k", "v", "w")).resolves.toEqual(["k", "v", "w"]);
		// The SHA first, refused with NOSCRIPT, then the source; later calls use the SHA again.
		await expect(runScript(redis, ECHO, 1, "k", "v", "w")).resolves.toEqual(["k", "v", "w"]);
		expect(await scriptCalls()).toEqual({ eval: 1, evalsha: 2 });
	});
});
