import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { McpError } from "@modelcontextprotocol/sdk/types.js";
import { BACKENDS, dropPrefix, uniquePrefix } from "../support/backends";
import { http, SERVICE_TOKEN, startNode, type TestNode } from "../support/node";

let tenantCounter = 0;
const newTenant = () => `pin-${process.pid}-${++tenantCounter}`;

describe.each(BACKENDS)("definition pinning on the $name store", ({ redisUrl }) => {
	let node: TestNode;
	const prefix = uniquePrefix();
	const call = (method: string, path: string, tenant: string, body?: unknown) =>
		http(node.url, method, `/api/v1${path}`, { tenant, body });

	/** A tenant with a datetime tool (runs in-process, no worker start-up) changed once after registration: its first hash is stale. */
	const changedTool = async () => {
		const tenant = newTenant();
		const created = await call("POST", "/tools", tenant, {
			name: "clock",
			type: "datetime",
			description: "v1"
		});
		expect(created.status).toBe(201);
		const updated = await call("PATCH", `/tools/${created.body.id}`, tenant, { description: "v2" });
		expect(updated.status).toBe(200);
		expect(updated.body.definition_hash).not.toBe(created.body.definition_hash);
		return {
			tenant,
			id: created.body.id,
			stale: created.body.definition_hash,
			current: updated.body.definition_hash
		};
	};

	beforeAll(async () => {
		node = await startNode({ redisUrl, redisPrefix: prefix });
	});

	afterAll(async () => {
		await node.stop();
		if (redisUrl) await dropPrefix(redisUrl, prefix);
	});

	it("runs a tool whose definition_hash is the expected one", async () => {
		const { tenant, id, current } = await changedTool();
		const res = await call("POST", "/internal/execute", tenant, {
			tool_id: id,
			parameters: { operation: "now" },
			expected_hash: current
		});
		expect(res.status).toBe(200);
		expect(res.body).toMatchObject({ status: "completed", result: { iso: expect.any(String) } });
	});

	it("refuses with 409 DEFINITION_CHANGED and the current hash when the definition changed", async () => {
		const { tenant, id, stale, current } = await changedTool();
		const res = await call("POST", "/internal/execute", tenant, {
			tool_name: "clock",
			parameters: { operation: "now" },
			expected_hash: stale
		});
		expect(res.status).toBe(409);
		expect(res.body).toMatchObject({ type: "DEFINITION_CHANGED", data: { definition_hash: current } });
		const stats = await call("GET", `/tools/${id}/stats`, tenant);
		expect(stats.body).toMatchObject({ calls: 0 });
	});

	it("refuses a task pinned to a stale hash before queueing it", async () => {
		const { tenant, stale, current } = await changedTool();
		const res = await call("POST", "/internal/tasks", tenant, {
			payload: { tool_name: "clock", parameters: { operation: "now" }, expected_hash: stale }
		});
		expect(res.status).toBe(409);
		expect(res.body).toMatchObject({ type: "DEFINITION_CHANGED", data: { definition_hash: current } });
	});

	it("fails a queued task whose tool changed while it waited, without running it", async () => {
		const { tenant, id, stale } = await changedTool();
		// The message as submit queued it while `stale` was current; a worker takes it after the change.
		const executor = node.broker.getLocalService("executor") as unknown as {
			runTask(task: unknown): Promise<{ outcome: { status: string; error?: { message: string } } }>;
		};
		const { outcome } = await executor.runTask({
			task_id: `pinned-${tenant}`,
			tenant_id: tenant,
			type: "tool_execution",
			metadata: {},
			payload: { tool_id: id, parameters: { operation: "now" }, expected_hash: stale }
		});
		expect(outcome.status).toBe("failed");
		expect(outcome.error!.message).toMatch(/definition changed/);
		const stats = await call("GET", `/tools/${id}/stats`, tenant);
		expect(stats.body).toMatchObject({ calls: 0 });
	});

	it("carries definition_hash in every discovery format", async () => {
		const { tenant, current } = await changedTool();
		const discover = (format: string) =>
			call("POST", "/registry/discover", tenant, { query: "clock", format, limit: 100 });
		const native = await discover("native");
		expect(native.body.items.find((i: any) => i.tool.name === "clock").tool.definition_hash).toBe(current);
		for (const format of ["openai", "anthropic"]) {
			const res = await discover(format);
			expect(res.body.definition_hashes.clock).toBe(current);
		}
		const mcp = await discover("mcp");
		expect(mcp.body.tools.find((t: any) => t.name === "clock")._meta).toEqual({ definition_hash: current });
	});

	it("pins MCP tools/call with the _meta.definition_hash the client saw", async () => {
		const { tenant, stale, current } = await changedTool();
		const client = new Client({ name: "pinning-test", version: "1.0.0" });
		await client.connect(
			new StreamableHTTPClientTransport(new URL(`${node.url}/mcp`), {
				requestInit: { headers: { authorization: `Bearer ${SERVICE_TOKEN}`, "x-tenant-id": tenant } }
			})
		);
		try {
			const listed = await client.listTools();
			expect(listed.tools.find(t => t.name === "clock")!._meta).toEqual({ definition_hash: current });
			const ok = await client.callTool({
				name: "clock",
				arguments: { operation: "now" },
				_meta: { definition_hash: current }
			});
			expect(ok.structuredContent).toMatchObject({ iso: expect.any(String) });
			const refused = await client
				.callTool({ name: "clock", arguments: { operation: "now" }, _meta: { definition_hash: stale } })
				.then(
					() => null,
					(err: unknown) => err
				);
			expect(refused).toBeInstanceOf(McpError);
			expect((refused as McpError).data).toEqual({ definition_hash: current });
		} finally {
			await client.close();
		}
	});
});
