import { randomUUID } from "crypto";
import { once } from "events";
import { createServer, type Socket } from "net";
import Redis from "ioredis";
import { describeWithRedis, dropPrefix, uniquePrefix } from "../support/backends";
import { eventually, until } from "../support/eventually";
import { ExecutorProcess } from "../support/executor-process";
import { OwnNatsServer } from "../support/nats-server";
import { http, SERVICE_TOKEN } from "../support/node";
import { ServiceProcess } from "../support/process-node";
import { OwnRedisServer } from "../support/redis-server";
import { upgrade } from "../support/upgrade";

/** The contract's bound: a dependency down is a 503 with `Retry-After` within 5 s. */
const ANSWER_WITHIN_MS = 5000;

const tenant = "outage";

const count = (text: string, pattern: RegExp) => text.match(new RegExp(pattern, "g"))?.length ?? 0;

/** How many clients are connected to the Redis at `url`, not counting the one that asks. */
async function clientsOf(url: string): Promise<number> {
	const asking = new Redis(url);
	try {
		return (
			String(await asking.client("LIST"))
				.trim()
				.split("\n").length - 1
		);
	} finally {
		asking.disconnect();
	}
}

/** Listens on a dead server's port and resets every connection: counts the clients' reconnect attempts. */
async function resetter(port: number) {
	let attempts = 0;
	const server = createServer((socket: Socket) => {
		attempts++;
		socket.resetAndDestroy();
	});
	server.listen(port, "127.0.0.1");
	await once(server, "listening");
	return {
		attempts: () => attempts,
		close: () => new Promise(resolve => server.close(resolve))
	};
}

/** A request timed from sending to its answer. */
async function timed<T>(request: Promise<T>): Promise<{ answer: T; ms: number }> {
	const started = Date.now();
	const answer = await request;
	return { answer, ms: Date.now() - started };
}

const mcpInitialize = (url: string) =>
	fetch(`${url}/mcp`, {
		method: "POST",
		headers: {
			authorization: `Bearer ${SERVICE_TOKEN}`,
			"x-tenant-id": tenant,
			"content-type": "application/json",
			accept: "application/json, text/event-stream"
		},
		body: JSON.stringify({
			jsonrpc: "2.0",
			id: 1,
			method: "initialize",
			params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "test", version: "1" } }
		})
	});

describe("Redis of the gateway killed and started again", () => {
	let redis: OwnRedisServer;
	let node: ServiceProcess;
	let url: string;

	beforeAll(async () => {
		redis = await OwnRedisServer.start();
		node = new ServiceProcess({
			REDIS_URL: redis.url,
			REDIS_PREFIX: "outage:",
			SERVICE_TOKEN,
			EMBEDDINGS: "off",
			LOG_LEVEL: "info"
		});
		url = await node.url();
		await eventually(
			async () => expect((await http(url, "GET", "/api/v1/tools", { tenant })).status).toBe(200),
			30000
		);
	}, 90000);

	afterAll(async () => {
		await node?.stop();
		await redis?.kill();
	}, 30000);

	it("answers REST, MCP and WebSocket upgrades 503 with Retry-After at once, says so in readiness and logs the outage once", async () => {
		const clients = await clientsOf(redis.url);
		await redis.kill();
		const ready = await eventually(async () => {
			const res = await http(url, "GET", "/health/ready");
			expect(res.status).toBe(503);
			return res;
		}, ANSWER_WITHIN_MS);
		expect(ready.body).toMatchObject({ status: "unavailable", failed: ["redis"], checks: { redis: "down" } });

		const rest = await timed(http(url, "GET", "/api/v1/tools", { tenant }));
		expect(rest.answer.status).toBe(503);
		expect(rest.answer.body).toMatchObject({
			code: 503,
			type: "SERVICE_UNAVAILABLE",
			data: { dependency: "Redis" }
		});
		expect(Number(rest.answer.headers.get("retry-after"))).toBeGreaterThan(0);
		expect(rest.ms).toBeLessThan(ANSWER_WITHIN_MS);

		const mcp = await timed(mcpInitialize(url));
		expect(mcp.answer.status).toBe(503);
		expect(Number(mcp.answer.headers.get("retry-after"))).toBeGreaterThan(0);
		expect(mcp.ms).toBeLessThan(ANSWER_WITHIN_MS);

		const ws = await timed(
			upgrade(url, `/ws?tenant_id=${tenant}`, { authorization: `Bearer ${SERVICE_TOKEN}` })
		);
		expect(ws.answer).toMatch(/^HTTP\/1\.1 503 /);
		expect(ws.answer).toMatch(/\r\nRetry-After: \d+/);
		expect(ws.ms).toBeLessThan(ANSWER_WITHIN_MS);

		// Several reconnect attempts later: still one line for the whole outage, no ioredis stack per retry.
		await eventually(async () =>
			expect(count(node.stdout + node.stderr, /Redis \S+ is unreachable/g)).toBe(1)
		);
		const dead = await resetter(redis.port);
		const several = () => dead.attempts() >= 3 * clients;
		await until(`three reconnect attempts from each of the ${clients} clients`, several, 20000);
		await dead.close();
		const during = node.stdout + node.stderr;
		expect(count(during, /Redis \S+ is unreachable/g)).toBe(1);
		expect(during).not.toContain("Unhandled error event");

		await redis.resume();
		await eventually(async () => expect((await http(url, "GET", "/health/ready")).status).toBe(200), 15000);
		await eventually(async () =>
			expect((await http(url, "GET", "/api/v1/tools", { tenant })).status).toBe(200)
		);
		await eventually(async () =>
			expect(count(node.stdout + node.stderr, /Redis \S+ is reachable again/g)).toBe(1)
		);
	}, 90000);
});

describeWithRedis("the transporter (NATS) killed and started again", () => {
	const redisUrl = process.env.TEST_REDIS_URL!;
	const prefix = uniquePrefix();
	const namespace = `outage-${randomUUID()}`;
	let nats: OwnNatsServer;
	let gateway: ServiceProcess;
	let executor: ExecutorProcess;
	let url: string;

	const calculate = () =>
		http(url, "POST", "/api/v1/internal/execute", {
			tenant,
			body: { tool_name: "calculator", parameters: { expression: "1 + 1" } }
		});

	beforeAll(async () => {
		nats = await OwnNatsServer.start();
		const common = {
			TRANSPORTER: nats.url,
			REDIS_URL: redisUrl,
			REDIS_PREFIX: prefix,
			NAMESPACE: namespace,
			SERVICE_TOKEN,
			EMBEDDINGS: "off",
			LOG_LEVEL: "info"
		};
		gateway = new ServiceProcess({ ...common, NODE_ID: "gateway" }, ["api", "registry", "validator"]);
		const env: NodeJS.ProcessEnv = { ...process.env, ...common, NODE_ID: "executor", PORT: "0" };
		delete env.SERVICES;
		delete env.SERVICEDIR;
		executor = new ExecutorProcess("executor", env);
		url = await gateway.url();
		await eventually(async () => expect((await calculate()).body.status).toBe("completed"), 60000);
	}, 120000);

	afterAll(async () => {
		await executor?.stop();
		await gateway?.stop();
		await nats?.kill();
		await dropPrefix(redisUrl, prefix);
	}, 30000);

	it("names the transporter in readiness and answers executes 503 at once instead of hanging", async () => {
		await nats.kill();
		const ready = await eventually(async () => {
			const res = await http(url, "GET", "/health/ready");
			expect(res.status).toBe(503);
			return res;
		}, ANSWER_WITHIN_MS);
		expect(ready.body).toMatchObject({
			failed: ["transporter"],
			checks: { transporter: "down", redis: "ok" }
		});

		const execute = await timed(calculate());
		expect(execute.answer.status).toBe(503);
		expect(execute.answer.body).toMatchObject({ code: 503, data: { dependency: "transporter" } });
		expect(Number(execute.answer.headers.get("retry-after"))).toBeGreaterThan(0);
		expect(execute.ms).toBeLessThan(ANSWER_WITHIN_MS);
		// What the gateway serves itself still answers.
		expect((await http(url, "GET", "/api/v1/tools", { tenant })).status).toBe(200);
		expect(count(gateway.stdout + gateway.stderr, /Transporter connection lost/g)).toBe(1);

		await nats.resume();
		await eventually(async () => expect((await http(url, "GET", "/health/ready")).status).toBe(200), 20000);
		await eventually(async () => expect((await calculate()).body.status).toBe("completed"), 30000);
		expect(count(gateway.stdout + gateway.stderr, /Transporter connection is back/g)).toBe(1);
	}, 90000);
});
