import { calculatorPool } from "../../tools/calculator";
import { until } from "../support/eventually";
import { http, startNode, type TestNode } from "../support/node";

const TENANT = `dialects-${process.pid}`;

/** A schema as an LLM client sends it: dialect, local definitions, a local `$ref`, closed properties. */
const CLIENT_SCHEMA = {
	$schema: "https://json-schema.org/draft/2020-12/schema",
	type: "object",
	$defs: { address: { type: "object", properties: { city: { type: "string" } }, required: ["city"] } },
	properties: { expression: { type: "string" }, address: { $ref: "#/$defs/address" } },
	required: ["expression"],
	additionalProperties: false
};

describe("JSON Schema 2020-12 keywords in tool parameters", () => {
	let node: TestNode;
	const call = (method: string, path: string, body?: unknown) =>
		http(node.url, method, `/api/v1${path}`, { tenant: TENANT, body });
	const register = (name: string, parameters: unknown) =>
		call("POST", "/tools", { name, description: "Evaluates an expression", type: "calculator", parameters });

	beforeAll(async () => {
		node = await startNode();
	});
	afterAll(() => node.stop());

	it("stores $schema, $defs, $ref and additionalProperties and returns them unchanged", async () => {
		const created = await register("dialect_2020", CLIENT_SCHEMA);
		expect(created.status).toBe(201);
		expect(created.body.parameters).toEqual(CLIENT_SCHEMA);
		expect((await call("GET", `/tools/${created.body.id}`)).body.parameters).toEqual(CLIENT_SCHEMA);
	});

	it.each([
		["openai", (body: any) => body.tools[0].function.parameters],
		["anthropic", (body: any) => body.tools[0].input_schema],
		["mcp", (body: any) => body.tools[0].inputSchema]
	])("exports the schema unchanged in the %s format", async (format, schemaOf) => {
		const found = await call("POST", "/registry/discover", { query: "dialect_2020", format, limit: 1 });
		expect(found.status).toBe(200);
		expect(schemaOf(found.body)).toEqual(CLIENT_SCHEMA);
	});

	it("checks arguments through the local $ref and additionalProperties", async () => {
		const run = (parameters: unknown) =>
			call("POST", "/internal/execute", { tool_name: "dialect_2020", parameters });
		// The node's calculator threads load mathjs as it starts; on a busy machine the first runs would
		// wait for them beyond the tool's timeout, which is not what this test is about.
		await until("every calculator thread to load mathjs", () => calculatorPool.allLoaded(), 25000);
		const bad = await run({ expression: "1+1", address: {} });
		expect(bad.status).toBe(422);
		expect(bad.body.data).toEqual([expect.objectContaining({ field: "parameters.address.city" })]);
		expect((await run({ expression: "1+1", extra: true })).status).toBe(422);
		// The schema accepts a valid address; the calculator itself then reads the expression only.
		expect((await run({ expression: "1+1", address: { city: "Lisbon" } })).status).toBe(200);
		const good = await run({ expression: "1+1" });
		expect(good.body).toMatchObject({ status: "completed", result: { value: 2 } });
	});

	it("accepts the draft-07 dialect that most schema exporters write", async () => {
		const draft07 = { ...CLIENT_SCHEMA, $schema: "http://json-schema.org/draft-07/schema#" };
		const created = await register("dialect_07", draft07);
		expect(created.status).toBe(201);
		expect(created.body.parameters.$schema).toBe("http://json-schema.org/draft-07/schema#");
	});

	it("refuses a dialect it does not check", async () => {
		const res = await register("dialect_unknown", {
			...CLIENT_SCHEMA,
			$schema: "https://example.com/my-dialect"
		});
		expect(res.status).toBe(422);
		expect(res.body.data).toEqual([
			{
				field: "parameters.$schema",
				message: expect.stringContaining("https://json-schema.org/draft/2020-12/schema")
			}
		]);
	});

	it("refuses a $ref that leaves the schema, before anything fetches it", async () => {
		const res = await register("dialect_remote", {
			type: "object",
			properties: { city: { $ref: "https://schemas.example.com/city.json" } }
		});
		expect(res.status).toBe(422);
		expect(res.body.data).toEqual([
			{ field: "parameters.properties.city.$ref", message: expect.stringContaining("remote references") }
		]);
	});
});
