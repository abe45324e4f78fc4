import Redis from "ioredis";
import { BUILTIN_TOOLS } from "../../lib/builtin-tools";
import { RedisToolStore } from "../../lib/store/redis-tool-store";
import { describeWithRedis, dropPrefix, uniquePrefix } from "../support/backends";
import { http, startNode, type TestNode } from "../support/node";

const REDIS_URL = process.env.TEST_REDIS_URL!;
const CALCULATOR = BUILTIN_TOOLS.find(tool => tool.name === "calculator")!;

describeWithRedis("built-in tools kept in Redis across releases", () => {
	const prefix = uniquePrefix();
	let redis: Redis;
	let node: TestNode | undefined;

	const start = async () => {
		node = await startNode({ redisUrl: REDIS_URL, redisPrefix: prefix, services: ["api", "registry"] });
		return node;
	};
	const stop = async () => {
		await node?.stop();
		node = undefined;
	};
	const calculator = async () => {
		const found = await http(node!.url, "GET", "/api/v1/tools?type=calculator", { tenant: "acme" });
		expect(found.status).toBe(200);
		const [tool] = found.body.items as {
			id: string;
			version: number;
			description: string;
			definition_hash: string;
		}[];
		return tool;
	};

	beforeAll(() => {
		redis = new Redis(REDIS_URL);
	});

	afterAll(async () => {
		await stop();
		await redis.quit();
		await dropPrefix(REDIS_URL, prefix);
	});

	it("follows a release that changed a built-in's definition, as a new version, once, keeping the operator's settings", async () => {
		await start();
		const seeded = await calculator();
		expect(seeded).toMatchObject({ version: 1, description: CALCULATOR.description });
		await stop();

		// The calculator as an earlier release stored it, and as its operator set it up.
		const operators = {
			permissions: { agents: ["math-bot"] },
			timeout_ms: 2000,
			metadata: { tags: ["ours"] }
		};
		await new RedisToolStore(redis, prefix).update(seeded.id, current => ({
			...current,
			...operators,
			description: "Evaluate a math expression",
			definition_hash: "sha256:earlier-release"
		}));

		await start();
		const followed = await calculator();
		expect(followed).toMatchObject({
			id: seeded.id,
			version: 2,
			description: CALCULATOR.description,
			definition_hash: seeded.definition_hash,
			...operators
		});
		const versions = await http(node!.url, "GET", `/api/v1/tools/${seeded.id}/versions`, { tenant: "acme" });
		expect(versions.body.items.map((v: { version: number }) => v.version)).toEqual([2, 1]);
		await stop();

		// A start under the same release leaves it as it is.
		await start();
		expect(await calculator()).toMatchObject({ version: 2, definition_hash: seeded.definition_hash });
	});
});
