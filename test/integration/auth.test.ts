import { BACKENDS } from "../support/backends";
import { useKeysNode } from "../support/keys";
import { http, SERVICE_TOKEN, startNode, type TestNode } from "../support/node";
import { calculatorTool, clockTool } from "../support/definitions";

let counter = 0;
const newTenant = () => `auth-${process.pid}-${++counter}`;

describe.each(BACKENDS)("authentication and API keys on the $name store", ({ redisUrl }) => {
	const keys = useKeysNode(redisUrl);
	const { createKey } = keys;
	let node: TestNode;
	beforeAll(() => ({ node } = keys));

	const keyFor = async (tenant: string, scopes: string[], extra: Record<string, unknown> = {}) =>
		(await createKey({ tenant_id: tenant, scopes, ...extra })).body as { key_id: string; api_key: string };

	describe("credentials", () => {
		it.each([
			["no Authorization header", {}],
			["a non-Bearer scheme", { authorization: `Basic ${SERVICE_TOKEN}` }],
			["a wrong service token", { authorization: "Bearer wrong-token" }],
			["a malformed API key", { authorization: "Bearer trk_nothing" }],
			[
				"an unknown API key",
				{ authorization: "Bearer trk_01a211ad-b05d-7361-a131-e27b8242c47b.AAAAAAAAAAAAAAAAAAAAAAAA" }
			]
		])("answers 401 with %s", async (_case, headers) => {
			const res = await http(node.url, "GET", "/api/v1/tools", {
				token: null,
				headers: { ...headers, "x-tenant-id": "t" }
			});
			expect(res.status).toBe(401);
			expect(res.body).toMatchObject({ code: 401, type: "UNAUTHORIZED" });
		});

		it("requires X-Tenant-ID with the service token", async () => {
			const res = await http(node.url, "GET", "/api/v1/tools");
			expect(res.status).toBe(400);
			expect(res.body.type).toBe("TENANT_REQUIRED");
			const bad = await http(node.url, "GET", "/api/v1/tools", { tenant: "no spaces allowed" });
			expect(bad.status).toBe(400);
		});

		it("serves /health without a credential", async () => {
			const res = await http(node.url, "GET", "/health", { token: null });
			expect(res).toMatchObject({ status: 200, body: { status: "ok" } });
			const ready = await http(node.url, "GET", "/health/ready", { token: null });
			expect(ready.status).toBe(200);
			expect(ready.body.status).toBe("ready");
			if (redisUrl) expect(ready.body.checks.redis).toBe("ok");
		});
	});

	describe("API keys", () => {
		it("creates a key shown once, stored only hashed, that acts for its tenant", async () => {
			const tenant = newTenant();
			const res = await createKey({ tenant_id: tenant, scopes: ["tools:read", "tools:write"], name: "ci" });
			expect(res.status).toBe(201);
			expect(res.body).toMatchObject({
				tenant_id: tenant,
				scopes: ["tools:read", "tools:write"],
				name: "ci",
				agent_id: null
			});
			expect(res.body.api_key).toMatch(/^trk_/);
			expect(res.body).not.toHaveProperty("secret_hash");
			const created = await http(node.url, "POST", "/api/v1/tools", {
				token: res.body.api_key,
				body: calculatorTool("c")
			});
			expect(created.status).toBe(201);
			expect(created.body.tenant_id).toBe(tenant);
			if (redisUrl) {
				const { default: Redis } = await import("ioredis");
				const redis = new Redis(redisUrl);
				const raw = await redis.get(`${keys.prefix}key:${res.body.key_id}`);
				await redis.quit();
				expect(raw).not.toContain(res.body.api_key.split(".")[1]);
				expect(JSON.parse(raw!).secret_hash).toMatch(/^[0-9a-f]{64}$/);
			}
		});

		it("refuses a key whose secret is wrong even when the key id exists", async () => {
			const { api_key } = await keyFor(newTenant(), ["tools:read"]);
			const forged = `${api_key.split(".")[0]}.${"A".repeat(43)}`;
			expect((await http(node.url, "GET", "/api/v1/tools", { token: forged })).status).toBe(401);
		});

		it("answers 403 when a key lacks the route's scope (read-only key writing)", async () => {
			const { api_key } = await keyFor(newTenant(), ["tools:read"]);
			expect((await http(node.url, "GET", "/api/v1/tools", { token: api_key })).status).toBe(200);
			const write = await http(node.url, "POST", "/api/v1/tools", {
				token: api_key,
				body: calculatorTool("c")
			});
			expect(write.status).toBe(403);
			expect(write.body).toMatchObject({ code: 403, type: "FORBIDDEN" });
			expect(
				(await http(node.url, "POST", "/api/v1/registry/validate", { token: api_key, body: {} })).status
			).toBe(403);
		});

		it("answers 403 when a key names another tenant in X-Tenant-ID", async () => {
			const { api_key } = await keyFor(newTenant(), ["tools:read"]);
			const res = await http(node.url, "GET", "/api/v1/tools", { token: api_key, tenant: newTenant() });
			expect(res.status).toBe(403);
		});

		it("binds a key with agent_id to that agent", async () => {
			const tenant = newTenant();
			const { api_key } = await keyFor(tenant, ["tools:read", "tools:write"], { agent_id: "agent-a" });
			const other = await http(node.url, "GET", "/api/v1/tools", {
				token: api_key,
				headers: { "x-agent-id": "agent-b" }
			});
			expect(other.status).toBe(403);
			const same = await http(node.url, "GET", "/api/v1/tools", {
				token: api_key,
				headers: { "x-agent-id": "agent-a" }
			});
			expect(same.status).toBe(200);
			const created = await http(node.url, "POST", "/api/v1/tools", {
				token: api_key,
				body: calculatorTool("agent_tool")
			});
			expect(created.status).toBe(201);
			expect(created.body.tenant_id).toBe(tenant);
		});

		it("revokes a key with 204, after which it is refused", async () => {
			const { api_key, key_id } = await keyFor(newTenant(), ["tools:read"]);
			expect((await http(node.url, "GET", "/api/v1/tools", { token: api_key })).status).toBe(200);
			const revoked = await http(node.url, "DELETE", `/api/v1/keys/${key_id}`, { tenant: "ops" });
			expect(revoked.status).toBe(204);
			expect((await http(node.url, "GET", "/api/v1/tools", { token: api_key })).status).toBe(401);
			expect(
				(
					await http(node.url, "DELETE", "/api/v1/keys/01a211ad-0000-7000-8000-000000000000", {
						tenant: "ops"
					})
				).status
			).toBe(404);
		});

		it("lets a keys:admin key manage keys of its own tenant only, within its own scopes", async () => {
			const tenant = newTenant();
			const admin = await keyFor(tenant, ["keys:admin", "tools:read"]);
			const own = await createKey({ tenant_id: tenant, scopes: ["tools:read"] }, admin.api_key);
			expect(own.status).toBe(201);
			const foreign = await createKey({ tenant_id: newTenant(), scopes: ["tools:read"] }, admin.api_key);
			expect(foreign.status).toBe(403);
			const escalation = await createKey({ tenant_id: tenant, scopes: ["tools:write"] }, admin.api_key);
			expect(escalation.status).toBe(403);
			expect(escalation.body.data).toEqual({ scopes: ["tools:write"] });
			const otherTenantKey = await keyFor(newTenant(), ["tools:read"]);
			const revokeForeign = await http(node.url, "DELETE", `/api/v1/keys/${otherTenantKey.key_id}`, {
				token: admin.api_key
			});
			expect(revokeForeign.status).toBe(404);
			expect((await http(node.url, "GET", "/api/v1/tools", { token: otherTenantKey.api_key })).status).toBe(
				200
			);
			const revokeOwn = await http(node.url, "DELETE", `/api/v1/keys/${own.body.key_id}`, {
				token: admin.api_key
			});
			expect(revokeOwn.status).toBe(204);
		});

		it("refuses key creation without keys:admin and validates the body", async () => {
			const { api_key } = await keyFor(newTenant(), ["tools:read", "tools:write", "tools:execute"]);
			expect((await createKey({ tenant_id: "x", scopes: ["tools:read"] }, api_key)).status).toBe(403);
			expect((await createKey({ tenant_id: "x", scopes: [] })).status).toBe(422);
			expect((await createKey({ tenant_id: "x", scopes: ["root"] })).status).toBe(422);
			expect((await createKey({ tenant_id: "x", scopes: ["tools:read"], role: "admin" })).status).toBe(422);
			expect((await createKey({ tenant_id: "*", scopes: ["tools:read"] })).status).toBe(400);
		});
	});

	describe("isolation", () => {
		it("never lets a key read or change another tenant's tool", async () => {
			const owner = await keyFor(newTenant(), ["tools:read", "tools:write"]);
			const intruder = await keyFor(newTenant(), ["tools:read", "tools:write"]);
			const tool = await http(node.url, "POST", "/api/v1/tools", {
				token: owner.api_key,
				body: clockTool("private_tool")
			});
			for (const method of ["GET", "PATCH", "DELETE"]) {
				const res = await http(node.url, method, `/api/v1/tools/${tool.body.id}`, {
					token: intruder.api_key,
					body: method === "PATCH" ? { description: "x" } : undefined
				});
				expect(res.status).toBe(404);
			}
		});
	});
});

describe("per-tenant rate limiting", () => {
	let node: TestNode;

	beforeAll(async () => {
		node = await startNode({ settings: { tenantRateLimit: 5, tenantRateWindowMs: 60000 } });
	});

	afterAll(() => node.stop());

	it("answers 429 with Retry-After past the limit, per tenant", async () => {
		const statuses: number[] = [];
		for (let i = 0; i < 7; i++)
			statuses.push((await http(node.url, "GET", "/api/v1/tools", { tenant: "busy" })).status);
		expect(statuses).toEqual([200, 200, 200, 200, 200, 429, 429]);
		const limited = await http(node.url, "GET", "/api/v1/tools", { tenant: "busy" });
		expect(limited.body).toMatchObject({ code: 429, type: "RATE_LIMITED" });
		const retryAfter = Number(limited.headers.get("retry-after"));
		expect(retryAfter).toBeGreaterThanOrEqual(1);
		expect(retryAfter).toBeLessThanOrEqual(60);
		expect((await http(node.url, "GET", "/api/v1/tools", { tenant: "quiet" })).status).toBe(200);
	});
});
