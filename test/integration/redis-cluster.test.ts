import { connectRedis, isCluster, scanKeys, type RedisClient } from "../../lib/redis";
import { taskQueueFor } from "../../lib/tasks/backend";
import { calculatorPool } from "../../tools/calculator";
import { dropPrefix, uniquePrefix } from "../support/backends";
import { eventually, until } from "../support/eventually";
import { http, startNode, type TestNode } from "../support/node";
import { OwnRedisCluster } from "../support/redis-cluster";
import { auditLogSuite } from "../support/suites/audit-log";
import { keyStoreSuite } from "../support/suites/key-store";
import { rateLimiterSuite } from "../support/suites/rate-limiter";
import { sourceStoreSuite } from "../support/suites/source-store";
import { taskQueueSuite } from "../support/suites/task-queue";
import { toolStoreSuite } from "../support/suites/tool-store";
import { vectorStoreSuite } from "../support/suites/vector-store";
import { pendingTask } from "../support/tasks";

/**
 * Every Redis conformance suite, and the service itself, against a 3-master Redis Cluster this test
 * starts on loopback: a script touching keys of two slots, or a command spanning slots, fails here
 * (CROSSSLOT). redis-server and redis-cli are required (as they are in CI); without them it fails.
 */
describe("on a 3-master Redis Cluster", () => {
	let cluster: OwnRedisCluster | undefined;
	const url = () => cluster!.url;

	beforeAll(async () => {
		cluster = await OwnRedisCluster.start();
	}, 60000);

	afterAll(async () => {
		await cluster?.stop();
	});

	describe("TaskQueue", () => taskQueueSuite(url));
	describe("ToolStore", () => toolStoreSuite(url));
	describe("KeyStore", () => keyStoreSuite(url));
	describe("SourceStore", () => sourceStoreSuite(url));
	describe("VectorStore", () => vectorStoreSuite(url));
	describe("audit log", () => auditLogSuite(url, "redis-cluster"));
	describe("RateLimiter", () => rateLimiterSuite(url));

	describe("the layout", () => {
		let redis: RedisClient;
		const prefix = uniquePrefix();

		beforeAll(() => {
			redis = connectRedis(url());
		});

		afterAll(async () => {
			await redis.quit();
			await dropPrefix(url(), prefix);
		});

		it("spreads the tasks of many tenants over every master", async () => {
			const queue = taskQueueFor({}, { redis, redisPrefix: prefix, outboxMax: 1000, retentionS: 60 });
			for (let i = 0; i < 30; i++) await queue.submit(pendingTask(`tenant-${i}`));
			if (!isCluster(redis)) throw new Error("expected a cluster client");
			const perMaster = await Promise.all(
				redis.nodes("master").map(async node => {
					let tasks = 0;
					for await (const keys of scanKeys(node, `${prefix}*task:*`)) tasks += keys.length;
					return tasks;
				})
			);
			expect(perMaster).toHaveLength(3);
			for (const tasks of perMaster) expect(tasks).toBeGreaterThan(0);
			expect(perMaster.reduce((a, b) => a + b)).toBe(30);
		});
	});

	describe("the service", () => {
		let node: TestNode;
		const prefix = uniquePrefix();
		const call = (method: string, path: string, body?: unknown) =>
			http(node.url, method, `/api/v1${path}`, { tenant: "acme", body });

		beforeAll(async () => {
			node = await startNode({ redisUrl: url(), redisPrefix: prefix });
		}, 30000);

		afterAll(async () => {
			await node?.stop();
			await dropPrefix(url(), prefix);
		});

		it("registers a tool with its audit entry, and runs a queued task to its end with its entries", async () => {
			const registered = await call("POST", "/tools", {
				name: "adder",
				description: "Adds two numbers with the calculator",
				type: "calculator",
				parameters: { type: "object", properties: { expression: { type: "string" } } },
				config: {}
			});
			expect(registered.status).toBe(201);
			expect((await call("GET", `/tools/${registered.body.id}`)).body).toMatchObject({ name: "adder" });
			const audit = await call("GET", "/audit?action=tool.register");
			expect(audit.body.items).toEqual([expect.objectContaining({ target: `tool:${registered.body.id}` })]);

			// The node's calculator threads load mathjs as it starts; on a busy machine a first run would
			// wait for them beyond the tool's timeout and be retried, adding an entry of its own.
			await until("every calculator thread to load mathjs", () => calculatorPool.allLoaded(), 25000);
			const submitted = await call("POST", "/internal/tasks", {
				payload: { tool_name: "calculator", parameters: { expression: "2+3" } }
			});
			expect(submitted.status).toBe(202);
			const done = await eventually(async () => {
				const task = await call("GET", `/internal/tasks/${submitted.body.task_id}`);
				expect(task.body.status).toBe("completed");
				return task.body;
			}, 20000);
			expect(done.result).toEqual({ value: 5 });
			// Each entry is appended on its own here: the audit stream is in another slot than the task.
			const entries = async (action: string) => (await call("GET", `/audit?action=${action}`)).body.items;
			expect(await entries("task.submit")).toEqual([
				expect.objectContaining({ target: `task:${submitted.body.task_id}` })
			]);
			expect(await entries("tool.execute")).toEqual([
				expect.objectContaining({
					outcome: "completed",
					details: expect.objectContaining({ execution_id: done.metadata.execution_id })
				})
			]);
		}, 40000);
	});
});
