import { eventually } from "../support/eventually";
import { McpUpstream } from "../support/mcp-upstream";
import { http, METRICS_ON, SERVICE_TOKEN, startNode, type TestNode } from "../support/node";

/**
 * The sources API as a tenant's key and an operator see it, against a real MCP server (official SDK)
 * on loopback: tenancy and scopes, bad input answered 4xx with the problem named, and the per-source
 * gauges on the Prometheus endpoint.
 */

const TENANT = `sources-api-${process.pid}`;

let node: TestNode;
let upstream: McpUpstream;

const asService = (method: string, path: string, body?: unknown, tenant = TENANT) =>
	http(node.url, method, path, { body, tenant });
const withKey = (key: string, method: string, path: string, body?: unknown, tenant?: string) =>
	http(node.url, method, path, { body, token: key, tenant });

async function mintKey(scopes: string[]): Promise<string> {
	const minted = await http(node.url, "POST", "/api/v1/keys", {
		token: SERVICE_TOKEN,
		tenant: TENANT,
		body: { tenant_id: TENANT, scopes }
	});
	expect(minted.status).toBe(201);
	return minted.body.api_key;
}

beforeAll(async () => {
	upstream = new McpUpstream();
	upstream.define(
		{ name: "hello", description: "Says hello", inputSchema: { type: "object", properties: {} } },
		() => ({ content: [{ type: "text", text: "hello" }] })
	);
	await upstream.start();
	node = await startNode({
		settings: { outboundAllowHosts: ["127.0.0.1"] },
		broker: METRICS_ON
	});
});

afterAll(async () => {
	await node?.stop();
	await upstream?.stop();
});

describe("sources of a tenant's API key", () => {
	it("are created in the key's tenant, never globally, and need tools:write", async () => {
		const writer = await mintKey(["tools:read", "tools:write", "tools:execute"]);
		const reader = await mintKey(["tools:read"]);
		const body = { type: "mcp", name: "keyed", url: upstream.url };

		const refused = await withKey(reader, "POST", "/api/v1/sources", body);
		expect(refused.status).toBe(403);
		expect(refused.body).toMatchObject({ code: 403 });

		// A key acts for its own tenant only: it cannot make a global source.
		const global = await withKey(writer, "POST", "/api/v1/sources", body, "*");
		expect(global.status).toBe(403);
		expect(global.body).toMatchObject({ code: 403, message: expect.any(String) });
		const created = await withKey(writer, "POST", "/api/v1/sources", body);
		expect(created.status).toBe(201);
		expect(created.body.tenant_id).toBe(TENANT);
		expect((await withKey(reader, "GET", "/api/v1/sources")).body.items).toEqual([
			expect.objectContaining({ id: created.body.id, tenant_id: TENANT })
		]);
		expect((await withKey(reader, "POST", `/api/v1/sources/${created.body.id}/refresh`)).status).toBe(403);
		expect((await withKey(reader, "DELETE", `/api/v1/sources/${created.body.id}`)).status).toBe(403);
		const run = await withKey(writer, "POST", "/api/v1/internal/execute", {
			tool_name: "keyed__hello",
			parameters: {}
		});
		expect(run.body).toMatchObject({ status: "completed", result: { content: [{ text: "hello" }] } });
		expect((await withKey(writer, "DELETE", `/api/v1/sources/${created.body.id}`)).status).toBe(204);
	});
});

describe("bad input to the sources API", () => {
	it("is answered 4xx in JSON, naming the problem, and stores nothing", async () => {
		const cases: [unknown, number, string][] = [
			[{ type: "mcp", name: "x", url: "file:///etc/passwd" }, 422, "url"],
			[{ type: "mcp", name: "x", url: "not a url" }, 422, "url"],
			[{ type: "mcp", name: "x", url: upstream.url, headers: { "X-Key": 42 } }, 422, "headers"],
			[{ type: "mcp", name: "x", url: upstream.url, extra: true }, 422, "extra"],
			[{ type: "mcp", name: "x", url: upstream.url, spec: {} }, 422, "spec"],
			[{ type: "openapi", name: "x" }, 422, "spec"],
			[{ type: "mcp", name: "a".repeat(33), url: upstream.url }, 422, "name"]
		];
		for (const [body, status, field] of cases) {
			const answer = await asService("POST", "/api/v1/sources", body);
			expect({ body, status: answer.status }).toEqual({ body, status });
			expect(answer.headers.get("content-type")).toContain("application/json");
			expect(JSON.stringify(answer.body.data)).toContain(field);
		}
		const malformed = await asService("POST", "/api/v1/sources", "{not json");
		expect(malformed.status).toBe(400);
		expect(malformed.body).toMatchObject({ code: 400 });
		expect((await asService("GET", "/api/v1/sources")).body.items).toEqual([]);
	});

	it("names a source that is missing (404) or a name already used in the tenant (409)", async () => {
		expect((await asService("GET", "/api/v1/sources/no-such-source")).status).toBe(404);
		expect((await asService("POST", "/api/v1/sources/no-such-source/refresh")).status).toBe(404);
		expect((await asService("DELETE", "/api/v1/sources/no-such-source")).status).toBe(404);
		const body = { type: "mcp", name: "twice", url: upstream.url };
		const first = await asService("POST", "/api/v1/sources", body);
		expect(first.status).toBe(201);
		expect((await asService("POST", "/api/v1/sources", body)).status).toBe(409);
		// Another tenant may use the name.
		const other = await asService("POST", "/api/v1/sources", body, `${TENANT}-other`);
		expect(other.status).toBe(201);
		await asService("DELETE", `/api/v1/sources/${other.body.id}`, undefined, `${TENANT}-other`);
		await asService("DELETE", `/api/v1/sources/${first.body.id}`);
	});
});

describe("per-source metrics", () => {
	it("are on /metrics: health, tool count and last refresh, labelled by tenant and source", async () => {
		const created = await asService("POST", "/api/v1/sources", {
			type: "mcp",
			name: "measured",
			url: upstream.url
		});
		expect(created.status).toBe(201);
		const line = (text: string, name: string) =>
			text
				.split("\n")
				.find(
					l => l.startsWith(`${name}{`) && l.includes(`tenant="${TENANT}"`) && l.includes('source="measured"')
				);
		await (
			node.broker.getLocalService("sources") as unknown as { sampleMetrics(): Promise<void> }
		).sampleMetrics();
		await eventually(async () => {
			const text = (await http(node.url, "GET", "/metrics")).body as string;
			expect(line(text, "tool_registry_source_healthy")).toMatch(/ 1$/);
			expect(line(text, "tool_registry_source_tools")).toMatch(/ 1$/);
			const last = Number(line(text, "tool_registry_source_last_refresh")?.split(" ").pop());
			expect(last).toBeGreaterThan(Date.now() / 1000 - 120);
		});
		await asService("DELETE", `/api/v1/sources/${created.body.id}`);
	});
});
