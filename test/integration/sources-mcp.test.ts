import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { OPS_COMMANDS } from "../../lib/repl-commands";
import { eventually } from "../support/eventually";
import { registryMcpClient } from "../support/mcp";
import { legacySseServer, McpUpstream } from "../support/mcp-upstream";
import { http, startNode, type TestNode } from "../support/node";
import { closedPort, redirect, Upstream } from "../support/upstream";

/**
 * A real MCP server (official SDK) on 127.0.0.1, allowed by the outbound allow-list, registered as a
 * source; its tools run through REST, the registry's own MCP server and tasks. A server on 127.0.0.2
 * (not allowed) counts connections and must never get one.
 */

const TENANT = `sources-mcp-${process.pid}`;
const command = (name: string) => OPS_COMMANDS.find(c => c.command.split(" ")[0] === name)!;
const OTHER_TENANT = `${TENANT}-other`;

let node: TestNode;
let upstream: McpUpstream;

const api = (method: string, path: string, body?: unknown, tenant = TENANT) =>
	http(node.url, method, path, { body, tenant });

function defineTools(): void {
	upstream.tools.clear();
	upstream.define(
		{
			name: "add",
			description: "Adds two numbers",
			inputSchema: {
				$schema: "http://json-schema.org/draft-07/schema#",
				type: "object",
				properties: { a: { type: "number" }, b: { type: "number" } },
				required: ["a", "b"]
			},
			outputSchema: { type: "object", properties: { sum: { type: "number" } }, required: ["sum"] },
			annotations: { readOnlyHint: true, idempotentHint: true }
		},
		args => {
			const sum = Number(args.a) + Number(args.b);
			return { content: [{ type: "text", text: String(sum) }], structuredContent: { sum } };
		}
	);
	upstream.define(
		{ name: "fail", description: "Always fails", inputSchema: { type: "object", properties: {} } },
		() => ({ content: [{ type: "text", text: "it broke" }], isError: true })
	);
}

async function toolNamed(name: string, tenant = TENANT): Promise<any> {
	const page = await api("GET", "/api/v1/tools?limit=200", undefined, tenant);
	return page.body.items.find((tool: { name: string }) => tool.name === name);
}

beforeAll(async () => {
	upstream = new McpUpstream();
	defineTools();
	await upstream.start();
	node = await startNode({
		settings: { outboundAllowHosts: ["127.0.0.1"], probeBaseMs: 100, probeMaxMs: 400, tickMs: 50 },
		broker: { metrics: { enabled: true } }
	});
});

afterAll(async () => {
	await node?.stop();
	await upstream?.stop();
});

describe("an MCP server registered as a tool source", () => {
	let sourceId: string;

	it("becomes one mcp tool per remote tool, all pages of tools/list, with schemas and annotations carried over", async () => {
		const created = await api("POST", "/api/v1/sources", {
			type: "mcp",
			name: "calc",
			url: upstream.url,
			headers: { "X-Upstream-Key": "upstream-secret" }
		});
		expect(created.status).toBe(201);
		expect(created.headers.get("location")).toBe(`/api/v1/sources/${created.body.id}`);
		expect(created.body).toMatchObject({
			type: "mcp",
			name: "calc",
			tool_count: 2,
			health: { state: "healthy" }
		});
		expect(created.body.headers).toEqual({ "X-Upstream-Key": "********" });
		expect(JSON.stringify(created.body)).not.toContain("upstream-secret");
		sourceId = created.body.id;

		const add = await toolNamed("calc__add");
		expect(add).toMatchObject({
			type: "mcp",
			status: "active",
			description: "Adds two numbers",
			parameters: { type: "object", required: ["a", "b"] },
			config: { source_id: sourceId, remote_name: "add" },
			output_schema: { properties: { sum: { type: "number" } } },
			annotations: { read_only: true, idempotent: true },
			metadata: { source_id: sourceId, source: "calc" }
		});
		expect(add.parameters.$schema).toBeUndefined();
		expect(add.health).toMatchObject({ state: "healthy" });
		expect(await toolNamed("calc__fail")).toMatchObject({ type: "mcp", status: "active" });
		// The configured headers reach the server.
		expect(upstream.receivedHeaders.some(headers => headers["x-upstream-key"] === "upstream-secret")).toBe(
			true
		);
	});

	it("is listed and read by its tenant only", async () => {
		const list = await api("GET", "/api/v1/sources");
		expect(list.body.items.map((s: { id: string }) => s.id)).toContain(sourceId);
		expect((await api("GET", `/api/v1/sources/${sourceId}`)).body).toMatchObject({
			id: sourceId,
			tool_count: 2
		});
		expect((await api("GET", `/api/v1/sources/${sourceId}`, undefined, OTHER_TENANT)).status).toBe(404);
		expect((await api("DELETE", `/api/v1/sources/${sourceId}`, undefined, OTHER_TENANT)).status).toBe(404);
		const foreign = await api(
			"POST",
			"/api/v1/internal/execute",
			{ tool_name: "calc__add", parameters: { a: 1, b: 1 } },
			OTHER_TENANT
		);
		expect(foreign.status).toBe(404);
	});

	it("is shown to operators: REPL commands and per-source metrics", async () => {
		const listed = await command("sources").run(node.broker, {});
		expect(listed).toMatch(new RegExp(`calc\\s+${sourceId}\\s+${TENANT}\\s+mcp\\s+healthy\\s+2\\s+\\d{4}-`));
		const refreshed = await command("source").run(node.broker, { sourceId });
		expect(refreshed).toContain("calc (" + sourceId + ") is healthy, 2 tools");
		await (
			node.broker.getLocalService("sources") as unknown as { sampleMetrics(): Promise<void> }
		).sampleMetrics();
		const labels = { tenant: TENANT, source: "calc" };
		const value = (name: string) => node.broker.metrics.getMetric(name)!.get(labels)?.value;
		expect(value("tool_registry.source.tools")).toBe(2);
		expect(value("tool_registry.source.healthy")).toBe(1);
		expect(value("tool_registry.source.last_refresh")).toBeGreaterThan(Date.now() / 1000 - 60);
	});

	it("runs through REST: structuredContent is the result, isError a failed execution", async () => {
		const sum = await api("POST", "/api/v1/internal/execute", {
			tool_name: "calc__add",
			parameters: { a: 2, b: 3 }
		});
		expect(sum.status).toBe(200);
		expect(sum.body).toMatchObject({ status: "completed", result: { sum: 5 } });
		const failed = await api("POST", "/api/v1/internal/execute", { tool_name: "calc__fail", parameters: {} });
		expect(failed.body).toMatchObject({
			status: "failed",
			error: { type: "tool_error", message: "it broke" }
		});
		const badParams = await api("POST", "/api/v1/internal/execute", {
			tool_name: "calc__add",
			parameters: { a: "x" }
		});
		expect(badParams.status).toBe(422);
	});

	it("runs through the registry's MCP server", async () => {
		const client = await registryMcpClient(node.url, TENANT);
		try {
			const { tools } = await client.listTools();
			expect(tools.find(tool => tool.name === "calc__add")).toMatchObject({
				outputSchema: { properties: { sum: { type: "number" } } },
				annotations: { readOnlyHint: true, idempotentHint: true }
			});
			const result = (await client.callTool({
				name: "calc__add",
				arguments: { a: 4, b: 5 }
			})) as CallToolResult;
			expect(result.isError).toBeFalsy();
			expect(result.structuredContent).toEqual({ sum: 9 });
		} finally {
			await client.close();
		}
	});

	it("runs as a queued task", async () => {
		const submitted = await api("POST", "/api/v1/internal/tasks", {
			type: "tool_execution",
			payload: { tool_name: "calc__add", parameters: { a: 10, b: 20 } }
		});
		expect(submitted.status).toBe(202);
		const done = await eventually(async () => {
			const task = await api("GET", `/api/v1/internal/tasks/${submitted.body.task_id}`);
			expect(task.body.status).toBe("completed");
			return task.body;
		});
		expect(done.result).toEqual({ sum: 30 });
	});

	it("follows tools/list_changed: a remote tool added, one changed as a new version with a new hash, one gone disabled", async () => {
		const before = await toolNamed("calc__add");
		upstream.define(
			{ ...upstream.tools.get("add")!.tool, description: "Adds two numbers (exactly)" },
			upstream.tools.get("add")!.handler
		);
		upstream.define(
			{
				name: "echo",
				description: "Echoes its text",
				inputSchema: { type: "object", properties: { text: { type: "string" } } }
			},
			args => ({ content: [{ type: "text", text: String(args.text) }] })
		);
		upstream.tools.delete("fail");
		await upstream.notifyToolsChanged();

		const after = await eventually(async () => {
			const tool = await toolNamed("calc__add");
			expect(tool.description).toBe("Adds two numbers (exactly)");
			return tool;
		});
		expect(after.id).toBe(before.id);
		expect(after.version).toBe(before.version + 1);
		expect(after.definition_hash).not.toBe(before.definition_hash);
		expect((await api("GET", `/api/v1/tools/${before.id}?version=${before.version}`)).body.description).toBe(
			"Adds two numbers"
		);
		await eventually(async () =>
			expect(await toolNamed("calc__echo")).toMatchObject({ status: "active", type: "mcp" })
		);
		await eventually(async () => expect(await toolNamed("calc__fail")).toMatchObject({ status: "disabled" }));
		const echo = await api("POST", "/api/v1/internal/execute", {
			tool_name: "calc__echo",
			parameters: { text: "hi" }
		});
		expect(echo.body).toMatchObject({
			status: "completed",
			result: { content: [{ type: "text", text: "hi" }] }
		});
	});

	it("brings a disabled tool back when the server offers it again, on a refresh", async () => {
		defineTools();
		const refreshed = await api("POST", `/api/v1/sources/${sourceId}/refresh`);
		expect(refreshed.status).toBe(200);
		expect(refreshed.body.changes.enabled).toEqual(["calc__fail"]);
		expect(refreshed.body.changes.disabled).toEqual(["calc__echo"]);
		expect(await toolNamed("calc__fail")).toMatchObject({ status: "active" });
		const again = await api("POST", `/api/v1/sources/${sourceId}/refresh`);
		expect(again.body.changes).toMatchObject({ added: [], updated: [], disabled: [], enabled: [] });
	});

	it("survives the server going away and coming back: tools stay, calls fail as upstream errors, then work again", async () => {
		const before = await toolNamed("calc__add");
		await upstream.stop();
		const down = await api("POST", "/api/v1/internal/execute", {
			tool_name: "calc__add",
			parameters: { a: 1, b: 2 }
		});
		expect(down.body).toMatchObject({ status: "failed", error: { type: "upstream_error" } });
		const refreshed = await api("POST", `/api/v1/sources/${sourceId}/refresh`);
		expect(refreshed.body.health).toMatchObject({ state: "unreachable" });
		expect(refreshed.body.health.next_check_at).toEqual(expect.any(String));
		expect(await toolNamed("calc__add")).toMatchObject({
			id: before.id,
			status: "active",
			version: before.version,
			health: { state: "unreachable", next_check_at: expect.any(String), error: expect.any(String) }
		});
		// Still discoverable, with its health shown.
		const found = await api("POST", "/api/v1/registry/discover", {
			query: "adds two numbers",
			types: ["mcp"]
		});
		const item = found.body.items.find((i: { tool: { id: string } }) => i.tool.id === before.id);
		expect(item.tool.health.state).toBe("unreachable");

		await upstream.start();
		// Probed again with backoff, without being asked.
		await eventually(async () => {
			expect((await api("GET", `/api/v1/sources/${sourceId}`)).body.health.state).toBe("healthy");
		});
		const up = await eventually(async () => {
			const result = await api("POST", "/api/v1/internal/execute", {
				tool_name: "calc__add",
				parameters: { a: 1, b: 2 }
			});
			expect(result.body.status).toBe("completed");
			return result.body;
		});
		expect(up.result).toEqual({ sum: 3 });
		expect((await toolNamed("calc__add")).health.state).toBe("healthy");
	});

	it("is deleted with its tools", async () => {
		const add = await toolNamed("calc__add");
		expect((await api("DELETE", `/api/v1/sources/${sourceId}`)).status).toBe(204);
		expect((await api("GET", `/api/v1/sources/${sourceId}`)).status).toBe(404);
		expect((await api("GET", `/api/v1/tools/${add.id}`)).status).toBe(404);
		const gone = await api("POST", "/api/v1/internal/execute", {
			tool_name: "calc__add",
			parameters: { a: 1, b: 2 }
		});
		expect(gone.status).toBe(404);
	});
});

describe("other MCP sources", () => {
	it("falls back to the older HTTP+SSE transport for a server that only speaks it", async () => {
		const legacy = await legacySseServer([
			{
				tool: {
					name: "shout",
					description: "Upper-cases",
					inputSchema: { type: "object", properties: { text: { type: "string" } } }
				},
				handler: args => ({ content: [{ type: "text", text: String(args.text).toUpperCase() }] })
			}
		]);
		try {
			const created = await api("POST", "/api/v1/sources", { type: "mcp", name: "legacy", url: legacy.url });
			expect(created.status).toBe(201);
			expect(created.body).toMatchObject({ tool_count: 1, health: { state: "healthy" } });
			const run = await api("POST", "/api/v1/internal/execute", {
				tool_name: "legacy__shout",
				parameters: { text: "hi" }
			});
			expect(run.body).toMatchObject({
				status: "completed",
				result: { content: [{ type: "text", text: "HI" }] }
			});
			expect((await api("DELETE", `/api/v1/sources/${created.body.id}`)).status).toBe(204);
		} finally {
			await legacy.close();
		}
	});

	it("runs a remote tool within the tool's own timeout, which a refresh keeps", async () => {
		const slow = new McpUpstream();
		slow.define(
			{ name: "wait", description: "Answers late", inputSchema: { type: "object", properties: {} } },
			async () => {
				await new Promise(resolve => setTimeout(resolve, 2000));
				return { content: [{ type: "text", text: "late" }] };
			}
		);
		await slow.start();
		try {
			const created = await api("POST", "/api/v1/sources", { type: "mcp", name: "slowpoke", url: slow.url });
			const [toolId] = created.body.tool_ids;
			expect((await api("PATCH", `/api/v1/tools/${toolId}`, { timeout_ms: 300 })).status).toBe(200);
			await api("POST", `/api/v1/sources/${created.body.id}/refresh`);
			expect((await api("GET", `/api/v1/tools/${toolId}`)).body.timeout_ms).toBe(300);
			const started = Date.now();
			const run = await api("POST", "/api/v1/internal/execute", {
				tool_name: "slowpoke__wait",
				parameters: {}
			});
			expect(run.body).toMatchObject({ status: "failed", error: { type: "timeout" } });
			expect(Date.now() - started).toBeLessThan(1500);
			expect((await api("DELETE", `/api/v1/sources/${created.body.id}`)).status).toBe(204);
		} finally {
			await slow.stop();
		}
	});

	it("describes a remote tool that comes without a description by its title, else its name", async () => {
		const terse = new McpUpstream();
		const empty = () => ({ content: [] });
		terse.define({ name: "mute", inputSchema: { type: "object", properties: {} } }, empty);
		terse.define(
			{ name: "titled", title: "Titled tool", inputSchema: { type: "object", properties: {} } },
			empty
		);
		await terse.start();
		try {
			const created = await api("POST", "/api/v1/sources", { type: "mcp", name: "terse", url: terse.url });
			expect(created.body).toMatchObject({ tool_count: 2 });
			expect((await toolNamed("terse__mute")).description).toBe("mute (a tool of the MCP server terse)");
			expect((await toolNamed("terse__titled")).description).toBe("Titled tool");
			expect((await api("DELETE", `/api/v1/sources/${created.body.id}`)).status).toBe(204);
		} finally {
			await terse.stop();
		}
	});

	it("registered globally with the service token, gives every tenant read-only tools", async () => {
		const created = await api(
			"POST",
			"/api/v1/sources",
			{ type: "mcp", name: "shared", url: upstream.url },
			"*"
		);
		expect(created.status).toBe(201);
		expect(created.body.tenant_id).toBe("*");
		const run = await api("POST", "/api/v1/internal/execute", {
			tool_name: "shared__add",
			parameters: { a: 1, b: 1 }
		});
		expect(run.body).toMatchObject({ status: "completed", result: { sum: 2 } });
		expect((await api("GET", "/api/v1/sources")).body.items.map((s: { id: string }) => s.id)).toContain(
			created.body.id
		);
		expect((await api("POST", `/api/v1/sources/${created.body.id}/refresh`)).status).toBe(403);
		expect((await api("DELETE", `/api/v1/sources/${created.body.id}`)).status).toBe(403);
		expect((await api("DELETE", `/api/v1/sources/${created.body.id}`, undefined, "*")).status).toBe(204);
	});
});

describe("MCP sources that cannot be used", () => {
	it("refuses a server at a refused address, which never receives a request", async () => {
		const refused = await Upstream.victim("127.0.0.2");
		try {
			const answer = await api("POST", "/api/v1/sources", {
				type: "mcp",
				name: "refused",
				url: refused.url("/mcp")
			});
			expect(answer.status).toBe(422);
			expect(answer.body.data).toEqual([{ field: "url", message: expect.stringContaining("refused") }]);
			expect(
				(await api("GET", "/api/v1/sources")).body.items.map((s: { name: string }) => s.name)
			).not.toContain("refused");
			expect(refused.connections).toBe(0);
		} finally {
			await refused.close();
		}
	});

	it("does not follow a redirect to a refused address", async () => {
		const refused = await Upstream.victim("127.0.0.2");
		// A server on an allowed address that sends every request on to the refused one.
		const redirector = await Upstream.start((_req, res) => redirect(res, 307, refused.url("/mcp")));
		try {
			const answer = await api("POST", "/api/v1/sources", {
				type: "mcp",
				name: "redirected",
				url: redirector.url("/mcp")
			});
			// The SDK client follows redirects within the server's origin only (each hop through the guard).
			expect(answer.status).toBe(201);
			expect(answer.body).toMatchObject({ tool_count: 0, health: { state: "unreachable" } });
			expect(refused.connections).toBe(0);
			expect((await api("DELETE", `/api/v1/sources/${answer.body.id}`)).status).toBe(204);
		} finally {
			await redirector.close();
			await refused.close();
		}
	});

	it("registers a server that does not answer yet as unreachable, with no tools", async () => {
		const url = `http://127.0.0.1:${await closedPort()}/mcp`;
		const answer = await api("POST", "/api/v1/sources", { type: "mcp", name: "later", url });
		expect(answer.status).toBe(201);
		expect(answer.body).toMatchObject({ tool_count: 0, health: { state: "unreachable" } });
		expect((await api("DELETE", `/api/v1/sources/${answer.body.id}`)).status).toBe(204);
	});

	it("rejects a malformed source with every problem named", async () => {
		const missingUrl = await api("POST", "/api/v1/sources", { type: "mcp", name: "x" });
		expect(missingUrl.status).toBe(422);
		const badName = await api("POST", "/api/v1/sources", { type: "mcp", name: "1 bad", url: upstream.url });
		expect(badName.status).toBe(422);
		const badType = await api("POST", "/api/v1/sources", { type: "grpc", name: "x", url: upstream.url });
		expect(badType.status).toBe(422);
	});
});
