import { TOOL_CORPUS } from "../fixtures/tool-corpus";
import { startNode, type TestNode } from "../support/node";
import {
	SERVICES,
	FORMATS,
	type Format,
	newTenant,
	discover,
	register,
	namesIn,
	discoveredNames,
	datetimeTool
} from "../support/discovery";

/** Discovery end to end: request options and output formats. */

describe("discovery request options", () => {
	let node: TestNode;
	const tenant = newTenant("options");

	beforeAll(async () => {
		node = await startNode({ services: SERVICES });
		for (const tool of TOOL_CORPUS) await register(node, tenant, tool as unknown as Record<string, unknown>);
		await register(node, tenant, {
			name: "loan_payment_calculator",
			description: "Calculate the monthly payment of a loan from principal, rate and term.",
			type: "calculator",
			metadata: { tags: ["finance", "loans"] }
		});
	});

	afterAll(() => node.stop());

	it("keeps only the requested types", async () => {
		const res = await discover(node, tenant, { query: "calculate payment", types: ["calculator"] });
		expect(res.status).toBe(200);
		expect(res.body.items.map((item: any) => item.tool.name).sort()).toEqual([
			"calculator",
			"loan_payment_calculator"
		]);
		const weather = await discover(node, tenant, { query: "weather", types: ["datetime"] });
		expect(weather.body.items.length).toBeGreaterThan(0);
		expect(weather.body.items.every((item: any) => item.tool.type === "datetime")).toBe(true);
		expect(await discoveredNames(node, tenant, { query: "weather", types: ["external_api"] })).toEqual([]);
	});

	it("keeps only tools carrying one of the requested tags", async () => {
		expect(await discoveredNames(node, tenant, { tags: ["crm"] })).toEqual([
			"crm_contact_lookup",
			"crm_deal_update"
		]);
		expect(await discoveredNames(node, tenant, { tags: ["crm", "jira"] })).toEqual([
			"crm_contact_lookup",
			"crm_deal_update",
			"jira_create_issue",
			"jira_search_issues"
		]);
		const ranked = await discoveredNames(node, tenant, { query: "update the deal stage", tags: ["crm"] });
		expect(ranked[0]).toBe("crm_deal_update");
		expect(ranked.every(name => name.startsWith("crm_"))).toBe(true);
		expect(await discoveredNames(node, tenant, { query: "weather", tags: ["crm"] })).toEqual([]);
	});

	it("answers 20 tools by default and up to 100 on request", async () => {
		const total = TOOL_CORPUS.length + 1 + 2;
		expect((await discover(node, tenant, {})).body.items).toHaveLength(20);
		expect((await discover(node, tenant, { query: "the a of to" })).body.items.length).toBeLessThanOrEqual(
			20
		);
		expect((await discover(node, tenant, { limit: 100 })).body.items).toHaveLength(Math.min(total, 100));
		expect((await discover(node, tenant, { limit: 5 })).body.items).toHaveLength(5);
	});

	it.each([
		["a limit of 101", { limit: 101 }],
		["a limit of 0", { limit: 0 }],
		["a negative limit", { limit: -1 }],
		["an unknown format", { format: "langchain" }],
		["types that are not a list", { types: "calculator" }]
	])("answers 422 for %s", async (_case, body) => {
		const res = await discover(node, tenant, { query: "weather", ...body });
		expect(res.status).toBe(422);
		expect(res.body).toMatchObject({ code: 422, type: "VALIDATION_ERROR" });
	});

	it("lists the usable tools by name, score 0, when the query is empty", async () => {
		for (const body of [{}, { query: "" }, { query: "   " }]) {
			const res = await discover(node, tenant, { ...body, limit: 100 });
			const names: string[] = res.body.items.map((item: any) => item.tool.name);
			expect(names).toEqual([...names].sort((a, b) => a.localeCompare(b)));
			expect(names).toContain("weather_current");
			expect(res.body.items.every((item: any) => item.score === 0)).toBe(true);
		}
	});

	it("pages an empty-query listing with offset without repeating a tool", async () => {
		const first = await discoveredNames(node, tenant, { limit: 30 });
		const second = await discoveredNames(node, tenant, { limit: 30, offset: 30 });
		expect(second.length).toBeGreaterThan(0);
		expect(first.filter(name => second.includes(name))).toEqual([]);
		expect([...first, ...second]).toEqual((await discoveredNames(node, tenant, { limit: 60 })).slice(0, 60));
	});
});

describe("discovery output formats", () => {
	let node: TestNode;
	const tenant = newTenant("formats");
	const strictSchema = {
		type: "object",
		properties: {
			city: { type: "string", description: "City name" },
			units: { type: "string", enum: ["metric", "imperial"] }
		},
		required: ["city", "units"],
		additionalProperties: false
	};
	const looseSchema = {
		type: "object",
		properties: {
			city: { type: "string" },
			days: { type: "integer", minimum: 1, maximum: 14 },
			options: { type: "object", properties: { hourly: { type: "boolean" } }, required: ["hourly"] }
		},
		required: ["city", "options"]
	};

	beforeAll(async () => {
		node = await startNode({ services: SERVICES });
		await register(node, tenant, {
			...datetimeTool("forecast_strict", "Weather forecast for a city in metric or imperial units."),
			parameters: strictSchema,
			metadata: { tags: ["weather", "forecast"] }
		});
		await register(node, tenant, {
			...datetimeTool("forecast_loose", "Weather forecast for a city over several days."),
			parameters: looseSchema,
			metadata: { tags: ["weather"] }
		});
	});

	afterAll(() => node.stop());

	const formatted = async (format: Format) => {
		const res = await discover(node, tenant, { query: "weather forecast", format });
		expect(res.status).toBe(200);
		return res.body;
	};

	it("answers native items of stored tools with descending numeric scores", async () => {
		const body = await formatted("native");
		expect(Object.keys(body)).toEqual(["items"]);
		expect(body.items.length).toBeGreaterThanOrEqual(2);
		for (const item of body.items) {
			expect(Object.keys(item).sort()).toEqual(["health", "match", "score", "tool"]);
			expect(item.match).toBe("lexical");
			expect(item.health).toEqual({ state: "unknown" });
			expect(typeof item.score).toBe("number");
			expect(item.score).toBeGreaterThan(0);
			expect(item.tool).toMatchObject({ tenant_id: tenant, status: "active", version: 1, type: "datetime" });
			expect(item.tool.id).toMatch(/^[0-9a-f-]{36}$/);
		}
		const scores = body.items.map((item: any) => item.score);
		expect(scores).toEqual([...scores].sort((a, b) => b - a));
	});

	it("answers the OpenAI function-tool shape, strict only where strict mode accepts the schema", async () => {
		const body = await formatted("openai");
		expect(Object.keys(body).sort()).toEqual(["definition_hashes", "strict_mode", "tools"]);
		for (const tool of body.tools) {
			expect(Object.keys(tool).sort()).toEqual(["function", "type"]);
			expect(tool.type).toBe("function");
			expect(Object.keys(tool.function).sort()).toEqual(["description", "name", "parameters", "strict"]);
		}
		const byName = Object.fromEntries(body.tools.map((tool: any) => [tool.function.name, tool.function]));
		expect(byName.forecast_strict).toEqual({
			name: "forecast_strict",
			description: "Weather forecast for a city in metric or imperial units.",
			parameters: strictSchema,
			strict: true
		});
		expect(byName.forecast_loose).toMatchObject({ parameters: looseSchema, strict: false });
		const incompatible = body.strict_mode.incompatible;
		expect(incompatible.map((entry: any) => entry.name)).not.toContain("forecast_strict");
		const loose = incompatible.find((entry: any) => entry.name === "forecast_loose");
		expect(loose.reasons).toEqual(
			expect.arrayContaining([
				"parameters: additionalProperties must be false",
				"parameters: every property must be required (days)",
				"parameters.options: additionalProperties must be false"
			])
		);
		// Every non-strict tool in the answer says why.
		const nonStrict = body.tools
			.filter((tool: any) => !tool.function.strict)
			.map((tool: any) => tool.function.name);
		expect(incompatible.map((entry: any) => entry.name).sort()).toEqual(nonStrict.sort());
	});

	it("answers the Anthropic tool shape with input_schema", async () => {
		const body = await formatted("anthropic");
		expect(Object.keys(body).sort()).toEqual(["definition_hashes", "tools"]);
		for (const tool of body.tools)
			expect(Object.keys(tool).sort()).toEqual(["description", "input_schema", "name"]);
		expect(body.tools.find((tool: any) => tool.name === "forecast_loose")).toEqual({
			name: "forecast_loose",
			description: "Weather forecast for a city over several days.",
			input_schema: looseSchema
		});
	});

	it("answers the MCP tools/list shape with inputSchema", async () => {
		const body = await formatted("mcp");
		expect(Object.keys(body)).toEqual(["tools"]);
		for (const tool of body.tools)
			expect(Object.keys(tool).sort()).toEqual(["_meta", "description", "inputSchema", "name"]);
		expect(body.tools.find((tool: any) => tool.name === "forecast_strict")).toEqual({
			name: "forecast_strict",
			description: "Weather forecast for a city in metric or imperial units.",
			inputSchema: strictSchema,
			_meta: { definition_hash: expect.stringMatching(/^sha256:[0-9a-f]{64}$/) }
		});
	});

	it("ranks the same tools in the same order in every format", async () => {
		const orders = await Promise.all(FORMATS.map(async format => namesIn(format, await formatted(format))));
		for (const order of orders.slice(1)) expect(order).toEqual(orders[0]);
	});
});
