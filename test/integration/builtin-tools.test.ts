import Redis from "ioredis";
import { BUILTIN_RELEASE, BUILTIN_TOOLS } from "../../lib/builtin-tools";
import { RedisToolStore } from "../../lib/store/redis-tool-store";
import { describeWithRedis, dropPrefix, uniquePrefix } from "../support/backends";
import { http, startNode, type TestNode } from "../support/node";

const REDIS_URL = process.env.TEST_REDIS_URL!;
const CALCULATOR = BUILTIN_TOOLS.find(tool => tool.name === "calculator")!;

interface Listed {
	id: string;
	version: number;
	description: string;
	definition_hash: string;
}

describeWithRedis("built-in tools kept in Redis across releases", () => {
	const prefix = uniquePrefix();
	let redis: Redis;
	let nodes: TestNode[] = [];

	/** Registry nodes on the same store, started at the same moment. */
	const start = async (count = 1) => {
		nodes = await Promise.all(
			Array.from({ length: count }, () =>
				startNode({ redisUrl: REDIS_URL, redisPrefix: prefix, services: ["api", "registry", "validator"] })
			)
		);
	};
	const stop = async () => {
		await Promise.all(nodes.map(node => node.stop()));
		nodes = [];
	};
	const calculator = async (): Promise<Listed> => {
		const found = await http(nodes[0].url, "GET", "/api/v1/tools?type=calculator", { tenant: "acme" });
		expect(found.status).toBe(200);
		return found.body.items[0];
	};
	const versions = async (id: string) =>
		(await http(nodes[0].url, "GET", `/api/v1/tools/${id}/versions`, { tenant: "acme" })).body.items.map(
			(v: { version: number }) => v.version
		);
	/** The calculator as an earlier release stored it, and as its operator set it up. */
	const operators = { permissions: { agents: ["math-bot"] }, timeout_ms: 2000 };
	const storedByEarlierRelease = (id: string) =>
		new RedisToolStore(redis, prefix).update(id, current => ({
			...current,
			...operators,
			description: "Evaluate a math expression",
			metadata: { tags: ["ours"], builtin_release: BUILTIN_RELEASE - 1 },
			definition_hash: "sha256:earlier-release"
		}));

	beforeAll(() => {
		redis = new Redis(REDIS_URL);
	});

	afterAll(async () => {
		await stop();
		await redis.quit();
		await dropPrefix(REDIS_URL, prefix);
	});

	it("follows a release that changed a built-in, as one new version, keeping the operator's settings", async () => {
		await start();
		const seeded = await calculator();
		expect(seeded).toMatchObject({ version: 1, description: CALCULATOR.description });
		await stop();

		await storedByEarlierRelease(seeded.id);
		// Two registry nodes start together: one of them makes the new version.
		await start(2);
		expect(await calculator()).toMatchObject({
			id: seeded.id,
			version: 2,
			description: CALCULATOR.description,
			definition_hash: seeded.definition_hash,
			metadata: { tags: ["ours"], builtin_release: BUILTIN_RELEASE },
			...operators
		});
		expect(await versions(seeded.id)).toEqual([2, 1]);
		await stop();

		// A start under the same release leaves it as it is.
		await start();
		expect(await calculator()).toMatchObject({ version: 2, definition_hash: seeded.definition_hash });
	});

	it("keeps an operator's change to a built-in made under this release", async () => {
		const { id } = await calculator();
		const changed = await http(nodes[0].url, "PATCH", `/api/v1/tools/${id}`, {
			tenant: "*",
			body: { description: "Our calculator: arithmetic and units" }
		});
		expect(changed.status).toBe(200);
		await stop();
		await start();
		expect(await calculator()).toMatchObject({
			version: changed.body.version,
			description: "Our calculator: arithmetic and units"
		});
	});
});
