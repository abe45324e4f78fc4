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
import { eventually } from "../support/eventually";
import { describeMisses, relevance, type Relevance } from "../support/relevance";
import { http, SERVICE_TOKEN, startNode, type TestNode } from "../support/node";
import {
	SERVICES,
	FORMATS,
	newTenant,
	discover,
	register,
	namesIn,
	discoveredNames,
	vectorsReady,
	datetimeTool
} from "../support/discovery";

/** Discovery end to end: relevance on a realistic corpus, and what a caller may use (agent permissions, status, global tools). */

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

	it("ranks the expected tool first for 85% of keyword requests lexically, 90% hybrid", async () => {
		expect((await measure("Keyword requests", CORPUS_QUERIES, "lexical")).recall1).toBeGreaterThanOrEqual(
			0.85
		);
		expect((await measure("Keyword requests", CORPUS_QUERIES, "hybrid")).recall1).toBeGreaterThanOrEqual(0.9);
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
