import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { expectedHash } from "../support/discovery";
import { eventually } from "../support/eventually";
import { http, SERVICE_TOKEN, startNode, type TestNode } from "../support/node";

const TENANT = `output-${process.pid}`;

/** An action whose answer misses the output schema below (`count` is a string). */
const ANSWERS = {
	name: "answers",
	actions: {
		count: {
			tool: { name: "count_things", description: "Counts things, badly" },
			handler: () => ({ count: "three" })
		}
	}
};
const COUNT_SCHEMA = { type: "object", properties: { count: { type: "integer" } }, required: ["count"] };

describe("output schemas and annotations", () => {
	let node: TestNode;
	let client: Client;
	const call = (method: string, path: string, body?: unknown) =>
		http(node.url, method, `/api/v1${path}`, { tenant: TENANT, body });
	const registerCounter = (name: string, extra: Record<string, unknown>) =>
		call("POST", "/tools", {
			name,
			description: "Counts things through the answers service",
			type: "moleculer_action",
			config: { action: "answers.count" },
			output_schema: COUNT_SCHEMA,
			...extra
		});
	const execute = (toolName: string, parameters = {}) =>
		call("POST", "/internal/execute", { tool_name: toolName, parameters });

	beforeAll(async () => {
		node = await startNode();
		node.broker.createService(ANSWERS);
		await eventually(async () =>
			expect((await call("GET", "/tools?type=moleculer_action")).body.items).toHaveLength(1)
		);
		for (const [name, mode] of [
			["count_strict", "strict"],
			["count_warn", undefined],
			["count_off", "off"]
		] as const)
			expect((await registerCounter(name, mode ? { output_validation: mode } : {})).status).toBe(201);
		// The calculator's worker threads start with the node; on a busy machine that can outlast one call.
		await eventually(
			async () => expect((await execute("calculator", { expression: "1+1" })).body.status).toBe("completed"),
			60000
		);
		client = new Client({ name: "output-test", version: "1.0.0" });
		await client.connect(
			new StreamableHTTPClientTransport(new URL(`${node.url}/mcp`), {
				requestInit: { headers: { authorization: `Bearer ${SERVICE_TOKEN}`, "x-tenant-id": TENANT } }
			})
		);
	}, 90000);

	afterAll(async () => {
		await client?.close();
		await node?.stop();
	});

	it("refuses an output schema that is not an object schema, and unknown annotations", async () => {
		const bad = await registerCounter("bad_output", {
			output_schema: { type: "string" },
			annotations: { read_only: true, dangerous: true }
		});
		expect(bad.status).toBe(422);
		expect(bad.body.data).toEqual(
			expect.arrayContaining([
				{ field: "output_schema.type", message: 'must be "object"' },
				expect.objectContaining({ field: "annotations.dangerous" })
			])
		);
	});

	it("fails a strict tool's mismatching result with output_invalid", async () => {
		const res = await execute("count_strict");
		expect(res.status).toBe(200);
		expect(res.body).toMatchObject({
			status: "failed",
			error: { type: "output_invalid", message: expect.stringContaining("result.count must be integer") }
		});
	});

	it("passes a warn tool's mismatching result and says how it misses the schema", async () => {
		const res = await execute("count_warn");
		expect(res.body).toMatchObject({
			status: "completed",
			result: { count: "three" },
			output_problems: [{ field: "result.count", message: "must be integer" }]
		});
	});

	it("does not check a tool whose output validation is off", async () => {
		const res = await execute("count_off");
		expect(res.body.status).toBe("completed");
		expect(res.body).not.toHaveProperty("output_problems");
	});

	it("changes the definition hash when the annotations change", async () => {
		const created = await registerCounter("count_hinted", { annotations: { read_only: true } });
		const patched = await call("PATCH", `/tools/${created.body.id}`, { annotations: { read_only: false } });
		expect(patched.status).toBe(200);
		expect(patched.body.definition_hash).not.toBe(created.body.definition_hash);
	});

	it("keeps the output schema and annotations in the hash of every later version", async () => {
		const created = await registerCounter("count_kept", { annotations: { read_only: true } });
		const patched = await call("PATCH", `/tools/${created.body.id}`, { description: "Counts things again" });
		expect(patched.status).toBe(200);
		expect(patched.body).toMatchObject({ output_schema: COUNT_SCHEMA, annotations: { read_only: true } });
		expect(patched.body.definition_hash).toBe(expectedHash(patched.body));
		// Rolling back to version 1 restores its definition whole, output schema and annotations included.
		await call("PATCH", `/tools/${created.body.id}`, { output_schema: { type: "object" }, annotations: {} });
		const rolledBack = await call("POST", `/tools/${created.body.id}/rollback`, { version: 1 });
		expect(rolledBack.status).toBe(200);
		expect(rolledBack.body).toMatchObject({ output_schema: COUNT_SCHEMA, annotations: { read_only: true } });
		expect(rolledBack.body.definition_hash).toBe(created.body.definition_hash);
	});

	it("lists the calculator over MCP with its title, truthful hints and output schema", async () => {
		const { tools } = await client.listTools();
		const calculator = tools.find(tool => tool.name === "calculator")!;
		expect(calculator.title).toBe("Calculator");
		expect(calculator.annotations).toEqual({
			title: "Calculator",
			readOnlyHint: true,
			destructiveHint: false,
			idempotentHint: true,
			openWorldHint: false
		});
		expect(calculator.outputSchema).toMatchObject({ type: "object", required: ["value"] });
	});

	it("returns structured content that the SDK client checks against the output schema", async () => {
		// The SDK client validates structuredContent against the listed outputSchema and throws on a mismatch.
		await client.listTools();
		const result = await client.callTool({ name: "calculator", arguments: { expression: "2 km to m" } });
		expect(result.isError).toBeFalsy();
		expect(result.structuredContent).toEqual({ value: "2000 m" });
	});

	it("reports a warn tool's mismatching result to MCP clients as an error, not as bad structured content", async () => {
		await client.listTools();
		const result = await client.callTool({ name: "count_warn", arguments: {} });
		expect(result.isError).toBe(true);
		expect(result.content).toEqual([
			{ type: "text", text: expect.stringMatching(/^output_invalid: .*result\.count must be integer/) }
		]);
	});
});
