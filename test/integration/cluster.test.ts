import { randomUUID } from "crypto";
import { describeWithNats, describeWithRedis, dropPrefix, uniquePrefix } from "../support/backends";
import { http, startNode, type TestNode } from "../support/node";
import { calculatorTool, clockTool } from "../support/definitions";

describeWithRedis("two gateway nodes sharing one Redis", () => {
	const redisUrl = process.env.TEST_REDIS_URL!;
	const prefix = uniquePrefix();
	let a: TestNode;
	let b: TestNode;

	beforeAll(async () => {
		const settings = { tenantRateLimit: 40, tenantRateWindowMs: 60000 };
		a = await startNode({ redisUrl, redisPrefix: prefix, settings });
		b = await startNode({ redisUrl, redisPrefix: prefix, settings });
	});

	afterAll(async () => {
		await Promise.all([a.stop(), b.stop()]);
		await dropPrefix(redisUrl, prefix);
	});

	it("lets exactly one of concurrent registrations of one name win across both nodes", async () => {
		const results = await Promise.all(
			Array.from({ length: 16 }, (_, i) =>
				http((i % 2 ? a : b).url, "POST", "/api/v1/tools", {
					tenant: "race",
					body: calculatorTool("contested")
				})
			)
		);
		const statuses = results.map(r => r.status).sort();
		expect(statuses.filter(s => s === 201)).toHaveLength(1);
		expect(statuses.filter(s => s === 409)).toHaveLength(15);
	});

	it("lets exactly one of concurrent updates with the same expected_version win across both nodes", async () => {
		const { body } = await http(a.url, "POST", "/api/v1/tools", {
			tenant: "race-update",
			body: calculatorTool("shared")
		});
		const results = await Promise.all(
			Array.from({ length: 10 }, (_, i) =>
				http((i % 2 ? a : b).url, "PATCH", `/api/v1/tools/${body.id}`, {
					tenant: "race-update",
					body: { description: `writer ${i}`, expected_version: 1 }
				})
			)
		);
		expect(results.filter(r => r.status === 200)).toHaveLength(1);
		expect(results.filter(r => r.status === 409)).toHaveLength(9);
		expect(
			(await http(b.url, "GET", `/api/v1/tools/${body.id}`, { tenant: "race-update" })).body.version
		).toBe(2);
	});

	it("sees a tool and a key created on one node from the other", async () => {
		const key = await http(a.url, "POST", "/api/v1/keys", {
			tenant: "ops",
			body: { tenant_id: "shared-tenant", scopes: ["tools:read", "tools:write"] }
		});
		const tool = await http(b.url, "POST", "/api/v1/tools", {
			token: key.body.api_key,
			body: clockTool("seen_everywhere")
		});
		expect(tool.status).toBe(201);
		const read = await http(a.url, "GET", `/api/v1/tools/${tool.body.id}`, { token: key.body.api_key });
		expect(read.body.name).toBe("seen_everywhere");
		await http(b.url, "DELETE", `/api/v1/keys/${key.body.key_id}`, { tenant: "ops" });
		expect((await http(a.url, "GET", "/api/v1/tools", { token: key.body.api_key })).status).toBe(401);
	});

	it("shares the per-tenant rate limit between gateway nodes", async () => {
		const tenant = `limited-${randomUUID()}`;
		const statuses: number[] = [];
		for (let i = 0; i < 44; i++)
			statuses.push((await http((i % 2 ? a : b).url, "GET", "/api/v1/tools", { tenant })).status);
		expect(statuses.filter(s => s === 200)).toHaveLength(40);
		expect(statuses.slice(40)).toEqual([429, 429, 429, 429]);
	});

	it("seeds the built-in tools once for both nodes", async () => {
		const list = await http(a.url, "GET", "/api/v1/tools?limit=200", { tenant: "seed-check" });
		const names = list.body.items.map((t: { name: string }) => t.name).sort();
		expect(names).toEqual(["calculator", "datetime"]);
	});
});

describeWithNats("services split over NATS (SERVICES per node)", () => {
	const transporter = process.env.TEST_NATS_URL!;
	const namespace = `test-${randomUUID()}`;
	let gateway: TestNode;
	let backend: TestNode;

	beforeAll(async () => {
		backend = await startNode({
			services: ["registry", "validator"],
			transporter,
			nodeID: "backend",
			broker: { namespace }
		});
		gateway = await startNode({ services: ["api"], transporter, nodeID: "gateway", broker: { namespace } });
		await gateway.broker.waitForServices(["registry", "validator"], 10000);
	});

	afterAll(async () => {
		await gateway.stop();
		await backend.stop();
	});

	it("serves the catalog from a gateway node whose registry runs on another node", async () => {
		const created = await http(gateway.url, "POST", "/api/v1/tools", {
			tenant: "remote",
			body: calculatorTool("remote_tool")
		});
		expect(created.status).toBe(201);
		expect(gateway.broker.getLocalService("registry")).toBeUndefined();
		const read = await http(gateway.url, "GET", `/api/v1/tools/${created.body.id}`, { tenant: "remote" });
		expect(read.body).toMatchObject({ name: "remote_tool", tenant_id: "remote" });
		const invalid = await http(gateway.url, "POST", "/api/v1/tools", {
			tenant: "remote",
			body: { name: "remote_tool", type: "nope" }
		});
		expect(invalid.status).toBe(422);
		const ready = await http(gateway.url, "GET", "/health/ready", { token: null });
		expect(ready.body.checks.transporter).toBe("ok");
	});

	it("answers 503 JSON when the registry's node is gone", async () => {
		await backend.stop();
		const res = await http(gateway.url, "GET", "/api/v1/tools", { tenant: "remote" });
		expect(res.status).toBe(503);
		expect(res.body.type).toBe("SERVICE_UNAVAILABLE");
		backend = await startNode({
			services: ["registry", "validator"],
			transporter,
			nodeID: "backend",
			broker: { namespace }
		});
	});
});

/** Needs the transporter and the shared store both. */
const describeWithNatsAndRedis = process.env.TEST_NATS_URL ? describeWithRedis : describe.skip;

describeWithNatsAndRedis("API keys managed on another node", () => {
	const redisUrl = process.env.TEST_REDIS_URL!;
	const transporter = process.env.TEST_NATS_URL!;
	const prefix = uniquePrefix();
	const namespace = `test-${randomUUID()}`;
	const shared = { transporter, redisUrl, redisPrefix: prefix, broker: { namespace } };
	let gateway: TestNode;
	let keys: TestNode | undefined;

	beforeAll(async () => {
		keys = await startNode({ ...shared, services: ["keys"], nodeID: "keys" });
		gateway = await startNode({ ...shared, services: ["api", "registry", "validator"], nodeID: "gateway" });
		await gateway.broker.waitForServices(["keys"], 10000);
	});

	afterAll(async () => {
		await gateway.stop();
		await keys?.stop();
		await dropPrefix(redisUrl, prefix);
	});

	it("mints and revokes through keys.* on the other node; the gateway authenticates without it", async () => {
		const created = await http(gateway.url, "POST", "/api/v1/keys", {
			tenant: "ops",
			body: { tenant_id: "split", scopes: ["tools:read"] }
		});
		expect(created.status).toBe(201);
		expect(gateway.broker.getLocalService("keys")).toBeUndefined();
		const asKey = { token: created.body.api_key as string };
		expect((await http(gateway.url, "GET", "/api/v1/tools", asKey)).status).toBe(200);

		await keys!.stop();
		keys = undefined;
		expect((await http(gateway.url, "GET", "/api/v1/tools", asKey)).status).toBe(200);
		const refused = await http(gateway.url, "POST", "/api/v1/keys", {
			tenant: "ops",
			body: { tenant_id: "split", scopes: ["tools:read"] }
		});
		expect([refused.status, refused.body.type]).toEqual([503, "SERVICE_UNAVAILABLE"]);

		keys = await startNode({ ...shared, services: ["keys"], nodeID: "keys" });
		await gateway.broker.waitForServices(["keys"], 10000);
		const revoked = await http(gateway.url, "DELETE", `/api/v1/keys/${created.body.key_id}`, {
			tenant: "ops"
		});
		expect(revoked.status).toBe(204);
		expect((await http(gateway.url, "GET", "/api/v1/tools", asKey)).status).toBe(401);
	});
});
