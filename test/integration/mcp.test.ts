import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import {
	ErrorCode,
	LATEST_PROTOCOL_VERSION,
	ToolListChangedNotificationSchema,
	type CallToolResult
} from "@modelcontextprotocol/sdk/types.js";
import { eventually } from "../support/eventually";
import { INITIALIZE, protocolError } from "../support/mcp";
import { http, SERVICE_TOKEN, startNode, type TestNode } from "../support/node";
import { calculatorTool } from "../support/definitions";

let tenantCounter = 0;
const newTenant = () => `mcp-${process.pid}-${++tenantCounter}`;

interface Session {
	client: Client;
	transport: StreamableHTTPClientTransport;
	/** `notifications/tools/list_changed` received so far. */
	changes(): number;
	/** Resolves once the standalone SSE stream (where notifications travel) is open on the server. */
	listening: Promise<void>;
}

interface Credentials {
	tenant?: string;
	agent?: string;
	/** Defaults to the service token. */
	token?: string;
}

const headersFor = ({ tenant, agent, token = SERVICE_TOKEN }: Credentials): Record<string, string> => ({
	authorization: `Bearer ${token}`,
	...(tenant ? { "x-tenant-id": tenant } : {}),
	...(agent ? { "x-agent-id": agent } : {})
});

const textOf = (result: CallToolResult) => {
	const item = result.content.find(part => part.type === "text");
	return item && item.type === "text" ? item.text : undefined;
};

describe("MCP server at /mcp driven by the official SDK client", () => {
	let node: TestNode;
	let open: Client[] = [];

	const rest = (method: string, path: string, tenant: string, body?: unknown) =>
		http(node.url, method, `/api/v1${path}`, { tenant, body });

	const register = async (tenant: string, definition: Record<string, unknown>) => {
		const res = await rest("POST", "/tools", tenant, calculatorTool(String(definition.name), definition));
		expect(res.status).toBe(201);
		expect(res.body.status).toBe("active");
		return res.body as { id: string; name: string };
	};

	const createKey = async (tenant: string, scopes: string[]) => {
		const res = await rest("POST", "/keys", tenant, { tenant_id: tenant, scopes });
		expect(res.status).toBe(201);
		return res.body.api_key as string;
	};

	const transportFor = (credentials: Credentials, onStreamOpen: () => void = () => undefined) =>
		new StreamableHTTPClientTransport(new URL(`${node.url}/mcp`), {
			requestInit: { headers: headersFor(credentials) },
			// Sees the GET that opens the notification stream; its 200 comes after the server registered it.
			fetch: async (url, init) => {
				const res = await fetch(url, init);
				if (init?.method === "GET" && res.ok) onStreamOpen();
				return res;
			}
		});

	const newClient = () => {
		const client = new Client({ name: "mcp-test", version: "1.0.0" });
		open.push(client);
		return client;
	};

	const connect = async (credentials: Credentials): Promise<Session> => {
		let changes = 0;
		let opened!: () => void;
		const listening = new Promise<void>(resolve => (opened = resolve));
		const client = newClient();
		client.setNotificationHandler(ToolListChangedNotificationSchema, async () => {
			changes++;
		});
		const transport = transportFor(credentials, opened);
		await client.connect(transport);
		return { client, transport, changes: () => changes, listening };
	};

	/** Every tool name of the session, following `nextCursor`; also the number of pages. */
	const listAll = async (client: Client) => {
		const names: string[] = [];
		const sizes: number[] = [];
		let cursor: string | undefined;
		do {
			const page = await client.listTools(cursor === undefined ? undefined : { cursor });
			names.push(...page.tools.map(tool => tool.name));
			sizes.push(page.tools.length);
			cursor = page.nextCursor;
		} while (cursor !== undefined && sizes.length < 20);
		return { names, sizes };
	};

	const listNames = async (client: Client) => (await listAll(client)).names;

	/** A JSON-RPC request sent by hand, for what the SDK client would not send. */
	const rawPost = (headers: Record<string, string>, message: Record<string, unknown>) =>
		fetch(`${node.url}/mcp`, {
			method: "POST",
			headers: {
				"content-type": "application/json",
				accept: "application/json, text/event-stream",
				"mcp-protocol-version": LATEST_PROTOCOL_VERSION,
				...headers
			},
			body: JSON.stringify({ jsonrpc: "2.0", ...message })
		});

	const expressionSchema = {
		type: "object",
		properties: { expression: { type: "string" } },
		required: ["expression"]
	};

	beforeAll(async () => {
		node = await startNode();
		// The calculator's worker threads start cold (ts-node under jest, seconds), and that start counts
		// against the tool's timeout (5 s by default; a request can only lower it): warm them up through a
		// calculator tool with a long timeout.
		await register("warm-up", { name: "warm_calc", timeout_ms: 30000 });
		const warmUp = { tool_name: "warm_calc", parameters: { expression: "1+1" } };
		const warm = await Promise.all([1, 2].map(() => rest("POST", "/internal/execute", "warm-up", warmUp)));
		expect(warm.map(res => res.body.result?.value)).toEqual([2, 2]);
	}, 40000);

	afterEach(async () => {
		await Promise.all(open.map(client => client.close().catch(() => undefined)));
		open = [];
	});

	afterAll(async () => {
		await node.stop();
	});

	describe("tools/list", () => {
		it("lists search_tools first, then the global built-ins and the tenant's tools by name", async () => {
			const tenant = newTenant();
			await register(tenant, {
				name: "loan_math",
				description: "Monthly payment of a loan",
				parameters: expressionSchema
			});
			const { client } = await connect({ tenant });

			const { tools, nextCursor } = await client.listTools();

			expect(tools.map(tool => tool.name)).toEqual(["search_tools", "calculator", "datetime", "loan_math"]);
			expect(nextCursor).toBeUndefined();
			for (const tool of tools) {
				expect(typeof tool.description).toBe("string");
				expect(tool.description!.length).toBeGreaterThan(0);
				expect(tool.inputSchema.type).toBe("object");
			}
			const byName = Object.fromEntries(tools.map(tool => [tool.name, tool]));
			expect(byName.search_tools.inputSchema).toMatchObject({ required: ["query"] });
			expect(byName.calculator.inputSchema).toMatchObject({ required: ["expression"] });
			expect(byName.datetime.inputSchema).toMatchObject({ required: ["operation"] });
			expect(byName.loan_math).toEqual({
				name: "loan_math",
				description: "Monthly payment of a loan",
				inputSchema: expressionSchema,
				_meta: { definition_hash: expect.stringMatching(/^sha256:[0-9a-f]{64}$/) },
				execution: { taskSupport: "optional" }
			});
			expect(byName.search_tools.execution).toEqual({ taskSupport: "forbidden" });
		});

		it("pages through more than 50 tools with nextCursor, listing every tool exactly once", async () => {
			const tenant = newTenant();
			const own = Array.from({ length: 55 }, (_, i) => `bulk_${String(i + 1).padStart(2, "0")}`);
			await Promise.all(own.map(name => register(tenant, { name, description: `Bulk tool ${name}` })));
			const { client } = await connect({ tenant });

			const { names, sizes } = await listAll(client);

			// 57 registry tools: 50 on the first page (plus the meta-tool), 7 on the second.
			expect(sizes).toEqual([51, 7]);
			const expected = [...own, "calculator", "datetime"].sort((a, b) => a.localeCompare(b));
			expect(names).toEqual(["search_tools", ...expected]);
			expect(new Set(names).size).toBe(names.length);
		});

		it("rejects a cursor it did not issue as a protocol error", async () => {
			const { client } = await connect({ tenant: newTenant() });
			const error = await protocolError(client.listTools({ cursor: "not-a-cursor" }));
			expect(error.code).toBe(ErrorCode.InvalidParams);
		});
	});

	describe("tools/call", () => {
		it("returns a calculator result as structuredContent and as an equal JSON text item", async () => {
			const { client } = await connect({ tenant: newTenant() });

			const result = (await client.callTool({
				name: "calculator",
				arguments: { expression: "6*7" }
			})) as CallToolResult;

			expect(result.isError).toBeFalsy();
			expect(result.structuredContent).toEqual({ value: 42 });
			expect(JSON.parse(textOf(result)!)).toEqual(result.structuredContent);
		});

		it("converts a date-time between zones with the datetime tool", async () => {
			const { client } = await connect({ tenant: newTenant() });

			const result = (await client.callTool({
				name: "datetime",
				arguments: { operation: "convert", datetime: "2024-03-10T12:00:00Z", to_timezone: "America/New_York" }
			})) as CallToolResult;

			expect(result.isError).toBeFalsy();
			expect(result.structuredContent).toEqual({
				iso: "2024-03-10T08:00:00.000-04:00",
				timezone: "America/New_York"
			});
			expect(JSON.parse(textOf(result)!)).toEqual(result.structuredContent);
		});

		it("reports a tool that failed as isError with the error in its text and no structuredContent", async () => {
			const { client } = await connect({ tenant: newTenant() });

			const result = (await client.callTool({
				name: "calculator",
				arguments: { expression: "import({})" }
			})) as CallToolResult;

			expect(result.isError).toBe(true);
			// Structured content is the tool's result, which a client checks against the tool's outputSchema.
			expect(result.structuredContent).toBeUndefined();
			expect(textOf(result)).toMatch(/^tool_error: .+/);
		});

		it("answers an unknown tool with a protocol error, not a tool result", async () => {
			const { client } = await connect({ tenant: newTenant() });

			const error = await protocolError(client.callTool({ name: "no_such_tool", arguments: {} }));

			expect(error.code).toBe(ErrorCode.InvalidParams);
			expect(error.message).toMatch(/not found/i);
		});

		it("answers arguments that do not match the schema with a protocol error naming the field", async () => {
			const { client } = await connect({ tenant: newTenant() });

			const call = client.callTool({ name: "calculator", arguments: { expression: 42 } });
			const error = await protocolError(call);

			expect(error.code).toBe(ErrorCode.InvalidParams);
			expect(error.data).toEqual(
				expect.arrayContaining([expect.objectContaining({ field: "parameters.expression" })])
			);
		});
	});

	describe("notifications/tools/list_changed", () => {
		it("reaches the tenant's session when a tool is registered and when it is deleted", async () => {
			const tenant = newTenant();
			const session = await connect({ tenant });
			await session.listening;

			const tool = await register(tenant, { name: "fresh_tool", description: "Appears while connected" });
			await eventually(async () => expect(session.changes()).toBeGreaterThanOrEqual(1));
			expect(await listNames(session.client)).toContain("fresh_tool");

			const before = session.changes();
			expect((await rest("DELETE", `/tools/${tool.id}`, tenant)).status).toBe(204);
			await eventually(async () => expect(session.changes()).toBeGreaterThan(before));
			expect(await listNames(session.client)).not.toContain("fresh_tool");
		});

		it("skips another tenant's session for a tenant tool but reaches it for a global tool", async () => {
			const tenantA = newTenant();
			const tenantB = newTenant();
			const a = await connect({ tenant: tenantA });
			const b = await connect({ tenant: tenantB });
			await Promise.all([a.listening, b.listening]);

			await register(tenantA, { name: "a_only_tool", description: "Tenant A's" });
			await eventually(async () => expect(a.changes()).toBeGreaterThanOrEqual(1));
			// A change of B's own, sent after A's: had A's reached B, it would have arrived first.
			await register(tenantB, { name: "b_only_tool", description: "Tenant B's" });
			await eventually(async () => expect(b.changes()).toBeGreaterThanOrEqual(1));
			expect(b.changes()).toBe(1);

			const global = await register("*", { name: "mcp_global_tool", description: "Everyone's" });
			try {
				await eventually(async () => expect(b.changes()).toBeGreaterThanOrEqual(2));
				expect(await listNames(b.client)).toContain("mcp_global_tool");
			} finally {
				expect((await rest("DELETE", `/tools/${global.id}`, "*")).status).toBe(204);
			}
		});
	});

	describe("tenant and agent isolation", () => {
		it("never lists, calls or joins tenant A's tools and session from tenant B", async () => {
			const tenantA = newTenant();
			const tenantB = newTenant();
			await register(tenantA, { name: "a_secret_tool", description: "Only tenant A's" });
			const a = await connect({ tenant: tenantA });
			const b = await connect({ tenant: tenantB });

			expect(await listNames(a.client)).toContain("a_secret_tool");
			expect(await listNames(b.client)).not.toContain("a_secret_tool");
			const error = await protocolError(
				b.client.callTool({ name: "a_secret_tool", arguments: { expression: "1+1" } })
			);
			expect(error.code).toBe(ErrorCode.InvalidParams);

			const sessionId = a.transport.sessionId!;
			expect(sessionId).toBeTruthy();
			const listing = { id: 7, method: "tools/list", params: {} };
			const withSession = (tenant: string) => ({ ...headersFor({ tenant }), "mcp-session-id": sessionId });
			const own = await rawPost(withSession(tenantA), listing);
			expect(own.status).toBe(200);
			expect(await own.text()).toContain("a_secret_tool");
			const stolen = await rawPost(withSession(tenantB), listing);
			expect(stolen.status).toBe(404);
			const body = await stolen.json();
			expect(body).toMatchObject({ code: 404, type: "NOT_FOUND" });
			expect(JSON.stringify(body)).not.toContain("a_secret_tool");
		});

		it("lists and runs an agent-restricted tool for that agent only", async () => {
			const tenant = newTenant();
			await register(tenant, {
				name: "agent_a_tool",
				description: "Only for agent-a",
				permissions: { agents: ["agent-a"] }
			});
			const agentA = await connect({ tenant, agent: "agent-a" });
			const agentB = await connect({ tenant, agent: "agent-b" });

			expect(await listNames(agentA.client)).toContain("agent_a_tool");
			const result = (await agentA.client.callTool({
				name: "agent_a_tool",
				arguments: { expression: "2+3" }
			})) as CallToolResult;
			expect(result.structuredContent).toEqual({ value: 5 });

			expect(await listNames(agentB.client)).not.toContain("agent_a_tool");
			const error = await protocolError(
				agentB.client.callTool({ name: "agent_a_tool", arguments: { expression: "2+3" } })
			);
			expect(error.code).toBe(ErrorCode.InvalidParams);

			// A session is bound to its agent as well as its tenant.
			const listing = { id: 8, method: "tools/list", params: {} };
			const headers = {
				...headersFor({ tenant, agent: "agent-b" }),
				"mcp-session-id": agentA.transport.sessionId!
			};
			expect((await rawPost(headers, listing)).status).toBe(404);
		});
	});

	describe("authentication and scopes", () => {
		it("answers 401 with an UNAUTHORIZED JSON body when no credential is sent", async () => {
			const res = await rawPost({}, INITIALIZE);
			expect(res.status).toBe(401);
			expect(res.headers.get("content-type")).toMatch(/application\/json/);
			expect(await res.json()).toMatchObject({ code: 401, type: "UNAUTHORIZED" });
		});

		it("answers 401 to a wrong token, raw and through the SDK client", async () => {
			const res = await rawPost(headersFor({ tenant: newTenant(), token: "wrong-token" }), INITIALIZE);
			expect(res.status).toBe(401);
			expect(await res.json()).toMatchObject({ code: 401, type: "UNAUTHORIZED" });

			const client = newClient();
			const transport = transportFor({ tenant: newTenant(), token: "wrong-token" });
			await expect(client.connect(transport)).rejects.toMatchObject({ code: 401 });
		});

		it("lets a tools:read key list and search but refuses tools/call for lack of tools:execute", async () => {
			const tenant = newTenant();
			const { client } = await connect({ token: await createKey(tenant, ["tools:read"]) });

			expect(await listNames(client)).toEqual(expect.arrayContaining(["search_tools", "calculator"]));
			const found = (await client.callTool({
				name: "search_tools",
				arguments: { query: "math" }
			})) as CallToolResult;
			expect(found.isError).toBeFalsy();

			const call = client.callTool({ name: "calculator", arguments: { expression: "1+1" } });
			const error = await protocolError(call);
			expect(error.message).toContain("tools:execute");
		});

		it("lets a key with tools:read and tools:execute call a tool", async () => {
			const tenant = newTenant();
			const { client } = await connect({ token: await createKey(tenant, ["tools:read", "tools:execute"]) });

			const result = (await client.callTool({
				name: "calculator",
				arguments: { expression: "6*7" }
			})) as CallToolResult;

			expect(result.structuredContent).toEqual({ value: 42 });
		});

		it("answers 403 to a key without tools:read", async () => {
			const tenant = newTenant();
			const key = await createKey(tenant, ["tools:execute", "tools:write"]);

			const res = await rawPost(headersFor({ token: key }), INITIALIZE);
			expect(res.status).toBe(403);
			expect(await res.json()).toMatchObject({ code: 403, type: "FORBIDDEN" });

			const client = newClient();
			await expect(client.connect(transportFor({ token: key }))).rejects.toMatchObject({ code: 403 });
		});
	});

	describe("search_tools", () => {
		it("ranks datetime first for a time zone conversion query", async () => {
			const { client } = await connect({ tenant: newTenant() });

			const result = (await client.callTool({
				name: "search_tools",
				arguments: { query: "time zone conversion" }
			})) as CallToolResult;

			expect(result.isError).toBeFalsy();
			const { tools } = result.structuredContent as { tools: { name: string; inputSchema: unknown }[] };
			expect(tools[0]).toMatchObject({ name: "datetime", inputSchema: { type: "object" } });
			expect(JSON.parse(textOf(result)!)).toEqual(result.structuredContent);
		});

		it("refuses arguments outside its input schema with a protocol error naming the field", async () => {
			const { client } = await connect({ tenant: newTenant() });
			for (const args of [{}, { query: "a", limit: 90 }, { query: "a", offset: 1 }]) {
				const error = await protocolError(client.callTool({ name: "search_tools", arguments: args }));
				expect(error.message).toMatch(/arguments/);
				expect(error.message.match(/MCP error/g)).toHaveLength(1);
			}
		});

		it("leaves out a registry tool that takes the meta-tool's name, so names stay unique", async () => {
			const tenant = newTenant();
			await register(tenant, { name: "search_tools" });
			const { client } = await connect({ tenant });
			const names = await listNames(client);
			expect(names.filter(name => name === "search_tools")).toHaveLength(1);
		});
	});
});
