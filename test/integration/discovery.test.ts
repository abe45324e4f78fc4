import { createHash, randomUUID } from "crypto";
import canonicalize from "canonicalize";
import type { Context, Service, ServiceSchema } from "moleculer";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import {
	CORPUS_QUERIES,
	EVERYDAY_HELD_OUT,
	EVERYDAY_QUERIES,
	HELD_OUT_QUERIES,
	TOOL_CORPUS,
	type CorpusQuery,
	type CorpusTool
} from "../fixtures/tool-corpus";
import { describeWithNats, describeWithRedis, dropPrefix, uniquePrefix } from "../support/backends";
import { eventually } from "../support/eventually";
import { describeMisses, relevance, type Relevance } from "../support/relevance";
import { http, SERVICE_TOKEN, startNode, type HttpResult, type TestNode } from "../support/node";

const SERVICES = ["api", "registry", "validator"];
const FORMATS = ["native", "openai", "anthropic", "mcp"] as const;
type Format = (typeof FORMATS)[number];

let tenantCounter = 0;
const newTenant = (label = "discovery") => `${label}-${process.pid}-${++tenantCounter}`;

const agentHeaders = (agent?: string) => (agent ? { "x-agent-id": agent } : undefined);

function discover(
	node: TestNode,
	tenant: string,
	body: Record<string, unknown>,
	agent?: string
): Promise<HttpResult> {
	return http(node.url, "POST", "/api/v1/registry/discover", { tenant, body, headers: agentHeaders(agent) });
}

async function register(node: TestNode, tenant: string, definition: Record<string, unknown>): Promise<any> {
	const res = await http(node.url, "POST", "/api/v1/tools", { tenant, body: definition });
	if (res.status !== 201)
		throw new Error(`register ${String(definition.name)}: ${res.status} ${JSON.stringify(res.body)}`);
	return res.body;
}

/** The tool names of a discovery answer in any format, best first. */
function namesIn(format: Format, body: any): string[] {
	if (format === "native") return body.items.map((item: any) => item.tool.name);
	if (format === "openai") return body.tools.map((tool: any) => tool.function.name);
	return body.tools.map((tool: any) => tool.name);
}

async function discoveredNames(
	node: TestNode,
	tenant: string,
	body: Record<string, unknown>,
	agent?: string
) {
	const res = await discover(node, tenant, body, agent);
	expect(res.status).toBe(200);
	return namesIn((body.format as Format | undefined) ?? "native", res.body);
}

/** The definition hash recomputed by a client from a read: RFC 8785 canonical JSON, SHA-256. */
const expectedHash = (tool: any) =>
	"sha256:" +
	createHash("sha256")
		.update(
			canonicalize({
				name: tool.name,
				description: tool.description,
				parameters: tool.parameters,
				config: tool.config,
				output_schema: tool.output_schema,
				annotations: tool.annotations
			})!
		)
		.digest("hex");

const datetimeTool = (name: string, description: string, extra: Record<string, unknown> = {}) => ({
	name,
	description,
	type: "datetime",
	...extra
});

/** Resolves once every tool the registry has indexed has its vector. */
async function vectorsReady(node: TestNode): Promise<void> {
	const registry = node.broker.getLocalService("registry") as unknown as {
		discovery: { pendingVectors(): Promise<number> };
		toolVectors: { pending: number } | null;
	};
	await eventually(
		async () => {
			expect(registry.toolVectors?.pending).toBe(0);
			expect(await registry.discovery.pendingVectors()).toBe(0);
		},
		240_000,
		200
	);
}

describe("discovery relevance on a realistic tool corpus (local embeddings)", () => {
	let node: TestNode;
	const tenant = newTenant("relevance");

	beforeAll(async () => {
		node = await startNode({ services: SERVICES, settings: { embeddings: "local" } });
		for (const tool of TOOL_CORPUS) await register(node, tenant, tool as unknown as Record<string, unknown>);
		// A first query builds the index, which asks for the vectors of every tool it holds.
		await discover(node, tenant, { query: "warm up" });
		await vectorsReady(node);
	}, 300_000);

	afterAll(() => node.stop());

	it("has at least 50 tools and 20 queries per set, each expecting a tool of the corpus", () => {
		expect(TOOL_CORPUS.length).toBeGreaterThanOrEqual(50);
		const names = new Set([...TOOL_CORPUS.map((tool: CorpusTool) => tool.name), "calculator", "datetime"]);
		expect(names.size).toBe(TOOL_CORPUS.length + 2);
		for (const set of [CORPUS_QUERIES, HELD_OUT_QUERIES, EVERYDAY_QUERIES, EVERYDAY_HELD_OUT]) {
			expect(set.length).toBeGreaterThanOrEqual(20);
			for (const { expected } of set) expect([expected, names.has(expected)]).toEqual([expected, true]);
		}
	});

	/** Runs every query in one mode over HTTP, prints the figures and misses, answers them. */
	async function measure(title: string, queries: CorpusQuery[], mode: string): Promise<Relevance> {
		const result = await relevance(queries, query =>
			discoveredNames(node, tenant, { query, mode, limit: 10 })
		);
		console.log(
			`${title}, ${mode}: recall@1 ${result.recall1}, recall@5 ${result.recall5}, MRR ${result.mrr}\n` +
				describeMisses(result)
		);
		return result;
	}

	it("ranks the expected tool first for 85% of keyword requests lexically, 88% hybrid", async () => {
		expect((await measure("Keyword requests", CORPUS_QUERIES, "lexical")).recall1).toBeGreaterThanOrEqual(
			0.85
		);
		expect((await measure("Keyword requests", CORPUS_QUERIES, "hybrid")).recall1).toBeGreaterThanOrEqual(
			0.88
		);
		await measure("Keyword requests, held out (reported only)", HELD_OUT_QUERIES, "hybrid");
	});

	it("finds the expected tool among the first five for 90% of everyday questions (hybrid)", async () => {
		expect((await measure("Everyday questions", EVERYDAY_QUERIES, "lexical")).recall5).toBeLessThan(0.6);
		expect((await measure("Everyday questions", EVERYDAY_QUERIES, "hybrid")).recall5).toBeGreaterThanOrEqual(
			0.9
		);
		await measure("Everyday questions, held out (reported only)", EVERYDAY_HELD_OUT, "hybrid");
	});

	it("answers an everyday question the words of no tool share, and says it matched by meaning", async () => {
		const res = await discover(node, tenant, { query: "do I need an umbrella tomorrow in Oslo", limit: 3 });
		expect(res.status).toBe(200);
		expect(res.body.items[0]).toMatchObject({ tool: { name: "weather_forecast" } });
		expect(["semantic", "both"]).toContain(res.body.items[0].match);
		const semantic = await discover(node, tenant, { query: "add two numbers", mode: "semantic", limit: 1 });
		expect(semantic.body.items).toEqual([expect.objectContaining({ match: "semantic" })]);
		expect(semantic.body.items[0].tool.name).toBe("calculator");
	});

	it("keeps filters before ranking in every mode: a tool the agent may not use never takes a place", async () => {
		await register(node, tenant, {
			...TOOL_CORPUS.find(tool => tool.name === "weather_forecast")!,
			name: "weather_forecast_private",
			permissions: { agents: ["forecaster"] }
		});
		await vectorsReady(node);
		const query = "will it rain tomorrow";
		for (const mode of ["hybrid", "semantic", "lexical"]) {
			const allowed = await discoveredNames(node, tenant, { query, mode, limit: 2 }, "forecaster");
			expect([mode, allowed.sort()]).toEqual([mode, ["weather_forecast", "weather_forecast_private"]]);
			const others = await discoveredNames(node, tenant, { query, mode, limit: 1 }, "someone");
			expect([mode, others]).toEqual([mode, ["weather_forecast"]]);
			const typed = await discoveredNames(node, tenant, { query, mode, types: ["calculator"] });
			expect(typed.every(name => name === "calculator")).toBe(true);
		}
	});
});

describe("discovery filters what a caller may use before ranking", () => {
	let node: TestNode;

	beforeAll(async () => {
		node = await startNode({ services: SERVICES });
	});

	afterAll(() => node.stop());

	describe("agent permissions", () => {
		const tenant = newTenant("perm");
		const other = newTenant("perm-other");
		const query = "export the monthly payroll salaries as a csv file";

		beforeAll(async () => {
			await register(node, tenant, {
				...datetimeTool(
					"payroll_export",
					"Export the monthly payroll run with every employee's gross salary, taxes and net pay " +
						"as a CSV file."
				),
				metadata: { tags: ["payroll", "hr", "salaries", "export", "csv"] },
				permissions: { agents: ["agent-a"] }
			});
			await register(node, tenant, {
				...datetimeTool(
					"payroll_summary",
					"Totals of the monthly payroll per department: headcount and gross cost."
				),
				metadata: { tags: ["payroll", "hr", "reporting"] }
			});
			for (const name of ["weather_current", "email_send", "sql_query"])
				await register(
					node,
					tenant,
					TOOL_CORPUS.find(tool => tool.name === name) as unknown as Record<string, unknown>
				);
			// Another tenant's tool that would be the best match of all, visible to every agent there.
			await register(node, other, {
				...datetimeTool(
					"payroll_export_all",
					"Export monthly payroll salaries of every employee as a CSV file."
				),
				metadata: { tags: ["payroll", "salaries", "export", "csv"] }
			});
		});

		it("ranks the restricted tool first for the agent it names", async () => {
			const names = await discoveredNames(node, tenant, { query }, "agent-a");
			expect(names.slice(0, 2)).toEqual(["payroll_export", "payroll_summary"]);
		});

		it.each(FORMATS)("never shows the restricted tool to another agent in the %s format", async format => {
			for (const agent of ["agent-b", undefined]) {
				const ranked = await discoveredNames(node, tenant, { query, format }, agent);
				expect(ranked).toContain("payroll_summary");
				expect(ranked).not.toContain("payroll_export");
				const listed = await discoveredNames(node, tenant, { format, limit: 100 }, agent);
				expect(listed).not.toContain("payroll_export");
				expect(listed).toContain("payroll_summary");
			}
		});

		it("fills a limit of 1 with the best tool agent-b may use: filtering precedes the limit", async () => {
			for (const format of FORMATS) {
				const names = await discoveredNames(node, tenant, { query, limit: 1, format }, "agent-b");
				expect([format, names]).toEqual([format, ["payroll_summary"]]);
			}
			expect(await discoveredNames(node, tenant, { query, limit: 1 }, "agent-a")).toEqual(["payroll_export"]);
		});

		it("never shows the restricted tool to agent-b over MCP, in tools/list or search_tools", async () => {
			const client = new Client({ name: "discovery-test", version: "1.0.0" });
			const transport = new StreamableHTTPClientTransport(new URL(`${node.url}/mcp`), {
				requestInit: {
					headers: {
						authorization: `Bearer ${SERVICE_TOKEN}`,
						"x-tenant-id": tenant,
						"x-agent-id": "agent-b"
					}
				}
			});
			await client.connect(transport);
			try {
				const listed = (await client.listTools()).tools.map(tool => tool.name);
				expect(listed).toContain("payroll_summary");
				expect(listed).not.toContain("payroll_export");
				const found = await client.callTool({ name: "search_tools", arguments: { query, limit: 1 } });
				const tools = (found.structuredContent as { tools: { name: string }[] }).tools;
				expect(tools.map(tool => tool.name)).toEqual(["payroll_summary"]);
			} finally {
				await client.close();
			}
		});

		it("never shows another tenant's tools, however well they match", async () => {
			for (const agent of ["agent-a", "agent-b"]) {
				const res = await discover(node, tenant, { query, limit: 100 }, agent);
				const owners = new Set(res.body.items.map((item: any) => item.tool.tenant_id));
				expect([...owners].every(owner => owner === tenant || owner === "*")).toBe(true);
				expect(namesIn("native", res.body)).not.toContain("payroll_export_all");
			}
			expect(await discoveredNames(node, other, { query, limit: 1 })).toEqual(["payroll_export_all"]);
			expect(await discoveredNames(node, other, { limit: 100 })).not.toContain("payroll_summary");
		});

		it("follows a change of permissions: a tool opened to every agent becomes discoverable", async () => {
			const extra = await register(node, tenant, {
				...datetimeTool(
					"payroll_audit_trail",
					"Audit trail of payroll changes: who changed which salary and when."
				),
				metadata: { tags: ["payroll", "audit"] },
				permissions: { agents: ["auditor"] }
			});
			expect(await discoveredNames(node, tenant, { query: "payroll audit trail" }, "agent-b")).not.toContain(
				"payroll_audit_trail"
			);
			const patched = await http(node.url, "PATCH", `/api/v1/tools/${extra.id}`, {
				tenant,
				body: { permissions: { agents: ["*"] } }
			});
			expect(patched.status).toBe(200);
			await eventually(async () =>
				expect((await discoveredNames(node, tenant, { query: "payroll audit trail" }, "agent-b"))[0]).toBe(
					"payroll_audit_trail"
				)
			);
		});
	});

	describe("tool status", () => {
		it("leaves out tools pending validation or invalid, and shows them once active", async () => {
			const tenant = newTenant("status");
			// No executor on this node: an external_api tool waits in pending_validation for its probe.
			const probe = (name: string) => ({
				name,
				description: `Inventory level of a warehouse product (${name})`,
				type: "external_api",
				parameters: { type: "object", properties: { sku: { type: "string" } }, required: ["sku"] },
				config: { url: "https://inventory.example.com/levels", method: "GET" },
				metadata: { tags: ["inventory", "warehouse"] }
			});
			const failing = await register(node, tenant, probe("inventory_failing"));
			const passing = await register(node, tenant, probe("inventory_passing"));
			expect([failing.status, passing.status]).toEqual(["pending_validation", "pending_validation"]);
			expect(await discoveredNames(node, tenant, { query: "warehouse inventory" })).toEqual([]);
			expect(await discoveredNames(node, tenant, { types: ["external_api"] })).toEqual([]);

			// The executor's probe results, as it records them.
			const record = (id: string, valid: boolean) =>
				node.broker.call("registry.recordValidation", {
					id,
					version: 1,
					report: {
						valid,
						errors: valid ? [] : [{ field: "config.url", message: "probe answered 503" }],
						kind: "functional",
						checked_at: new Date().toISOString()
					}
				});
			await record(failing.id, false);
			await record(passing.id, true);
			await eventually(async () =>
				expect(await discoveredNames(node, tenant, { query: "warehouse inventory" })).toEqual([
					"inventory_passing"
				])
			);
			const stored = await http(node.url, "GET", `/api/v1/tools/${failing.id}`, { tenant });
			expect(stored.body.status).toBe("invalid");
			expect(await discoveredNames(node, tenant, { types: ["external_api"], limit: 100 })).toEqual([
				"inventory_passing"
			]);
		});

		it("leaves out an auto-registered action tool once no node offers its action (disabled)", async () => {
			const tenant = newTenant("disabled");
			const name = `vault_rotate_${process.pid}`;
			const vault = node.broker.createService({
				name: `vault${process.pid}`,
				actions: {
					rotate: {
						tool: { name, description: "Rotate the database credentials kept in the vault", tags: ["vault"] },
						handler: (ctx: Context) => ({ rotated: true, by: ctx.nodeID })
					}
				}
			} as unknown as ServiceSchema) as Service;
			await eventually(async () =>
				expect(await discoveredNames(node, tenant, { query: "rotate vault credentials", limit: 1 })).toEqual([
					name
				])
			);
			await node.broker.destroyService(vault);
			await eventually(async () =>
				expect(await discoveredNames(node, tenant, { query: "rotate vault credentials" })).not.toContain(name)
			);
			const list = await http(node.url, "GET", "/api/v1/tools?type=moleculer_action&limit=200", { tenant });
			expect(list.body.items.find((tool: any) => tool.name === name)?.status).toBe("disabled");
		});
	});

	describe("global tools", () => {
		it("shows the built-in global tools to every tenant", async () => {
			const tenant = newTenant("globals");
			const res = await discover(node, tenant, { query: "calculator" });
			expect(res.body.items[0].tool).toMatchObject({ name: "calculator", tenant_id: "*" });
			const listed = await discover(node, tenant, {});
			expect(listed.body.items.map((item: any) => [item.tool.name, item.tool.tenant_id])).toEqual([
				["calculator", "*"],
				["datetime", "*"]
			]);
		});

		it("lets a tenant tool shadow a global one of the same name until the tenant tool goes", async () => {
			const name = `holiday_calendar_${process.pid}`;
			const global = await register(node, "*", {
				...datetimeTool(name, "Public holidays of every country, from the shared catalog."),
				metadata: { tags: ["holidays", "calendar"] }
			});
			const shadowing = newTenant("shadow");
			const plain = newTenant("plain");
			const own = await register(node, shadowing, {
				...datetimeTool(name, "Acme office closures and company holidays."),
				metadata: { tags: ["holidays", "calendar"] }
			});
			const matching = async (tenant: string, body: Record<string, unknown>) =>
				(await discover(node, tenant, body)).body.items
					.filter((item: any) => item.tool.name === name)
					.map((item: any) => item.tool.id);
			await eventually(async () => expect(await matching(plain, { query: "holidays" })).toEqual([global.id]));
			await eventually(async () =>
				expect(await matching(shadowing, { query: "holidays" })).toEqual([own.id])
			);
			expect(await matching(shadowing, { limit: 100 })).toEqual([own.id]);
			for (const format of ["openai", "anthropic", "mcp"] as const) {
				const names = await discoveredNames(node, shadowing, { query: "holidays", format });
				expect(names.filter(found => found === name)).toHaveLength(1);
			}
			expect((await http(node.url, "DELETE", `/api/v1/tools/${own.id}`, { tenant: shadowing })).status).toBe(
				204
			);
			await eventually(async () =>
				expect(await matching(shadowing, { query: "holidays" })).toEqual([global.id])
			);
		});
	});
});

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

describe("definition integrity hashes", () => {
	let node: TestNode;
	const tenant = newTenant("hash");
	const HASH = /^sha256:[0-9a-f]{64}$/;
	const partnerApi = {
		name: "partner_orders",
		description: "Orders placed through the partner portal",
		type: "external_api",
		parameters: { type: "object", properties: { since: { type: "string" } }, required: ["since"] },
		config: {
			url: "https://partners.example.com/orders",
			method: "GET",
			headers: { Authorization: "Bearer partner-secret" }
		},
		metadata: { tags: ["orders"] }
	};

	beforeAll(async () => {
		node = await startNode({ services: SERVICES });
	});

	afterAll(() => node.stop());

	const get = (id: string, version?: number) =>
		http(node.url, "GET", `/api/v1/tools/${id}${version ? `?version=${version}` : ""}`, { tenant });
	const patch = (id: string, body: Record<string, unknown>) =>
		http(node.url, "PATCH", `/api/v1/tools/${id}`, { tenant, body });

	it("carries on every read a hash a client can recompute over the config as read", async () => {
		const created = await register(node, tenant, partnerApi);
		const clock = await register(node, tenant, datetimeTool("office_clock", "Local time at every office"));
		expect(created.config.headers).toEqual({ Authorization: "********" });
		const reads = [
			created,
			clock,
			(await get(created.id)).body,
			...(await http(node.url, "GET", "/api/v1/tools?limit=200", { tenant })).body.items,
			...(await discover(node, tenant, { query: "office clock" })).body.items.map((item: any) => item.tool)
		];
		expect(reads.length).toBeGreaterThanOrEqual(6);
		for (const read of reads) {
			expect(read.definition_hash).toMatch(HASH);
			expect([read.name, read.definition_hash]).toEqual([read.name, expectedHash(read)]);
		}
	});

	it("changes the hash with the definition and keeps the old one on the old version", async () => {
		const created = await register(node, tenant, { ...partnerApi, name: "partner_orders_v" });
		const updated = await patch(created.id, {
			description: "Orders placed through the partner portal, newest first"
		});
		expect(updated.status).toBe(200);
		expect(updated.body.version).toBe(2);
		expect(updated.body.definition_hash).not.toBe(created.definition_hash);
		expect(updated.body.definition_hash).toBe(expectedHash(updated.body));

		const v1 = await get(created.id, 1);
		expect(v1.status).toBe(200);
		expect(v1.body).toMatchObject({
			version: 1,
			description: "Orders placed through the partner portal",
			definition_hash: created.definition_hash
		});
		expect(v1.body.definition_hash).toBe(expectedHash(v1.body));
		expect((await get(created.id, 2)).body.definition_hash).toBe(updated.body.definition_hash);
		expect((await get(created.id)).body.definition_hash).toBe(updated.body.definition_hash);

		const parameters = {
			...partnerApi.parameters,
			properties: { since: { type: "string", format: "date" } }
		};
		const reparametrised = await patch(created.id, { parameters });
		expect(reparametrised.body.definition_hash).not.toBe(updated.body.definition_hash);
		const renamed = await patch(created.id, { name: "partner_orders_renamed" });
		expect(renamed.body.definition_hash).not.toBe(reparametrised.body.definition_hash);
		const moved = await patch(created.id, {
			config: { ...renamed.body.config, url: "https://partners.example.com/v2/orders" }
		});
		expect(moved.body.definition_hash).not.toBe(renamed.body.definition_hash);
		expect(moved.body.definition_hash).toBe(expectedHash(moved.body));
	});

	it("keeps the hash when only metadata, permissions or a masked secret change", async () => {
		const created = await register(node, tenant, { ...partnerApi, name: "partner_orders_meta" });
		const tagged = await patch(created.id, { metadata: { tags: ["orders", "partners"], category: "sales" } });
		const restricted = await patch(created.id, { permissions: { agents: ["agent-sales"] } });
		const rotated = await patch(created.id, {
			config: { ...partnerApi.config, headers: { Authorization: "Bearer rotated-secret" } }
		});
		expect([tagged.body.version, restricted.body.version, rotated.body.version]).toEqual([2, 3, 4]);
		for (const res of [tagged, restricted, rotated])
			expect(res.body.definition_hash).toBe(created.definition_hash);
	});

	it("never takes definition_hash from a body: a read sent back is accepted and rehashed", async () => {
		const created = await register(node, tenant, datetimeTool("roundtrip_clock", "Clock of the round trip"));
		const forged = "sha256:" + "0".repeat(64);
		const res = await patch(created.id, {
			...created,
			definition_hash: forged,
			description: "Clock, round-tripped"
		});
		expect(res.status).toBe(200);
		expect(res.body.definition_hash).not.toBe(forged);
		expect(res.body.definition_hash).toBe(expectedHash(res.body));
		const copy = await http(node.url, "POST", "/api/v1/tools", {
			tenant: newTenant("hash-copy"),
			body: { ...created, definition_hash: forged }
		});
		expect(copy.status).toBe(201);
		expect(copy.body.definition_hash).toBe(created.definition_hash);
	});
});

describeWithNats("discovery indexes across registry nodes on NATS", () => {
	describeWithRedis("sharing one Redis store", () => {
		const transporter = process.env.TEST_NATS_URL!;
		const redisUrl = process.env.TEST_REDIS_URL!;
		const namespace = `discovery-${randomUUID()}`;
		const prefix = uniquePrefix();
		const tenant = newTenant("cluster");
		const nodes: TestNode[] = [];
		let a: TestNode;
		let b: TestNode;

		const start = async (nodeID: string) => {
			const node = await startNode({
				services: SERVICES,
				transporter,
				redisUrl,
				redisPrefix: prefix,
				nodeID: `${nodeID}-${process.pid}`,
				broker: { namespace }
			});
			nodes.push(node);
			return node;
		};
		/** The nodes whose registry `node` would send a `tool.*` event to. */
		const listenersKnownTo = (node: TestNode) =>
			node.broker.registry
				.getEventList({ withEndpoints: true })
				.filter(
					(event: { name: string; group: string }) => event.name === "tool.*" && event.group === "registry"
				)
				.flatMap((event: { endpoints?: { nodeID: string; available: boolean }[] }) => event.endpoints ?? [])
				.filter(endpoint => endpoint.available)
				.map(endpoint => endpoint.nodeID)
				.sort();
		/** Resolves once every node knows every other node's registry (and so sends it `tool.*` events). */
		const meshed = () =>
			eventually(async () => {
				const all = nodes.map(node => node.broker.nodeID).sort();
				for (const node of nodes)
					expect([node.broker.nodeID, listenersKnownTo(node)]).toEqual([node.broker.nodeID, all]);
			});
		const idsOn = async (node: TestNode, body: Record<string, unknown>, agent?: string) =>
			(await discover(node, tenant, { limit: 100, ...body }, agent)).body.items.map(
				(item: any) => item.tool.id
			);

		beforeAll(async () => {
			a = await start("discovery-a");
			b = await start("discovery-b");
			await meshed();
			// Node B builds its index now, so every later change must reach it as an event.
			expect(await idsOn(b, { query: "ledger" })).toEqual([]);
		});

		afterAll(async () => {
			await Promise.all(nodes.map(node => node.stop()));
			await dropPrefix(redisUrl, prefix);
		});

		it("shows on node B a tool registered through node A", async () => {
			const tool = await register(a, tenant, TOOL_CORPUS.find(t => t.name === "currency_convert") as never);
			await eventually(async () =>
				expect((await idsOn(b, { query: "convert dollars to euros" }))[0]).toBe(tool.id)
			);
		});

		it("shows on node B a patch made through node A, ranked by the new definition", async () => {
			const tool = await register(a, tenant, datetimeTool("ledger_export", "Export the general ledger"));
			await eventually(async () => expect(await idsOn(b, { query: "ledger" })).toEqual([tool.id]));
			const patched = await http(a.url, "PATCH", `/api/v1/tools/${tool.id}`, {
				tenant,
				body: { description: "Export the trial balance as a spreadsheet", metadata: { tags: ["accounting"] } }
			});
			expect(patched.status).toBe(200);
			await eventually(async () => {
				const res = await discover(b, tenant, { query: "trial balance spreadsheet" });
				expect(res.body.items[0].tool).toMatchObject({ id: tool.id, version: 2 });
				expect(res.body.items[0].tool.definition_hash).toBe(patched.body.definition_hash);
			});
			expect(await idsOn(b, { tags: ["accounting"] })).toEqual([tool.id]);
		});

		it("follows on node B a permission change made through node A", async () => {
			const tool = await register(a, tenant, datetimeTool("board_minutes", "Minutes of board meetings"));
			await eventually(async () =>
				expect(await idsOn(b, { query: "board minutes" }, "agent-b")).toEqual([tool.id])
			);
			await http(a.url, "PATCH", `/api/v1/tools/${tool.id}`, {
				tenant,
				body: { permissions: { agents: ["agent-a"] } }
			});
			await eventually(async () => expect(await idsOn(b, { query: "board minutes" }, "agent-b")).toEqual([]));
			expect(await idsOn(b, { query: "board minutes" }, "agent-a")).toEqual([tool.id]);
		});

		it("drops from node B a tool deleted through node A", async () => {
			const tool = await register(a, tenant, datetimeTool("obsolete_report", "Obsolete quarterly report"));
			await eventually(async () => expect(await idsOn(b, { query: "obsolete report" })).toEqual([tool.id]));
			expect((await http(a.url, "DELETE", `/api/v1/tools/${tool.id}`, { tenant })).status).toBe(204);
			await eventually(async () => expect(await idsOn(b, { query: "obsolete report" })).toEqual([]));
			expect(await idsOn(b, {})).not.toContain(tool.id);
		});

		it("shows on node B a global tool registered through node A in an index it already holds", async () => {
			const name = `fleet_status_${process.pid}`;
			const tool = await register(a, "*", datetimeTool(name, "Status of the delivery fleet vehicles"));
			await eventually(async () =>
				expect(await idsOn(b, { query: "delivery fleet vehicles" })).toEqual([tool.id])
			);
		});

		it("builds a later node's index from the store, then keeps it current from events", async () => {
			const before = await register(
				a,
				tenant,
				datetimeTool("warehouse_capacity", "Free pallet capacity per warehouse")
			);
			const c = await start("discovery-c");
			expect(await idsOn(c, { query: "pallet capacity" })).toEqual([before.id]);
			const names = (await discover(c, tenant, { limit: 100 })).body.items.map((item: any) => item.tool.name);
			expect(names).toEqual(
				expect.arrayContaining(["currency_convert", "ledger_export", "warehouse_capacity"])
			);
			expect(names).not.toContain("obsolete_report");
			await meshed();
			const after = await register(
				b,
				tenant,
				datetimeTool("dock_schedule", "Loading dock schedule for trucks")
			);
			await eventually(async () =>
				expect(await idsOn(c, { query: "loading dock trucks" })).toEqual([after.id])
			);
			await eventually(async () =>
				expect(await idsOn(a, { query: "loading dock trucks" })).toEqual([after.id])
			);
		});

		// A node's gateway answers before its peers have heard of it (about one second on NATS): an index it
		// builds in that window must still learn of changes made meanwhile, or it stays stale for good.
		it("keeps current the index of a just-joined node with changes made in its first second", async () => {
			const d = await start("discovery-d");
			expect(await idsOn(d, { query: "forklift maintenance" })).toEqual([]);
			const tool = await register(
				a,
				tenant,
				datetimeTool("forklift_service", "Forklift maintenance schedule")
			);
			await meshed();
			await eventually(async () =>
				expect(await idsOn(d, { query: "forklift maintenance" })).toEqual([tool.id])
			);
		});
	});
});
