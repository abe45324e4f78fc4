import { randomUUID } from "crypto";
import { monitorEventLoopDelay } from "perf_hooks";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { LocalEmbedder } from "../../lib/discovery/embedders/local";
import { describeWithNats, describeWithRedis, dropPrefix, uniquePrefix } from "../support/backends";
import { eventually } from "../support/eventually";
import { http, METRICS_ON, SERVICE_TOKEN, startNode, type TestNode } from "../support/node";
import { json, Upstream } from "../support/upstream";

/*
 * The three EMBEDDINGS modes, and discovery's promise under their faults: it answers (lexically)
 * while vectors are being computed, while the embedding service is down or slow, and a slow
 * embedding never delays /health. The orchestrator's Embedding Service is a stand-in HTTP server
 * that embeds by concepts, so "umbrella" is close to "precipitation" without sharing a word.
 */

const SERVICES = ["api", "registry", "validator"];

/** Words of one concept share a dimension. */
const CONCEPTS = [
	["rain", "umbrella", "precipitation", "forecast", "weather", "snow"],
	["money", "currency", "currencies", "dollars", "euros", "exchange"],
	["add", "sum", "numbers", "arithmetic", "math", "expression"]
];

function conceptVector(text: string): number[] {
	const words = text.toLowerCase().split(/[^a-z]+/);
	// A small constant in every dimension: no vector is all zeros.
	return [...CONCEPTS.map(concept => words.filter(word => concept.includes(word)).length), 0.01];
}

/** The orchestrator's Embedding Service, on the shared upstream stand-in. */
interface StandIn {
	upstream: Upstream;
	/** Texts embedded, in order, and the Authorization header of each request answered. */
	texts: string[];
	authorizations: (string | undefined)[];
	/** Answers 503 while set. */
	failing: boolean;
	/** Holds every answer this long. */
	delayMs: number;
}

async function startStandIn(): Promise<StandIn> {
	const state: Omit<StandIn, "upstream"> = { texts: [], authorizations: [], failing: false, delayMs: 0 };
	const upstream = await Upstream.start(async (req, res) => {
		if (req.method !== "POST" || req.path !== "/api/v1/embeddings") return void res.writeHead(404).end();
		const { texts } = JSON.parse(req.body) as { texts: string[] };
		await new Promise(resolve => setTimeout(resolve, state.delayMs));
		if (state.failing) return void res.writeHead(503).end();
		state.texts.push(...texts);
		state.authorizations.push(req.headers.authorization);
		json(res, 200, { embeddings: texts.map(conceptVector) });
	});
	return Object.assign(state, { upstream });
}

let tenantCounter = 0;
const newTenant = () => `embeddings-${process.pid}-${++tenantCounter}`;

const TOOLS = [
	{ name: "weather_forecast", description: "Multi-day forecast with precipitation.", type: "datetime" },
	{ name: "currency_convert", description: "Convert money between currencies.", type: "datetime" }
];

async function registerTools(node: TestNode, tenant: string) {
	for (const tool of TOOLS) {
		const res = await http(node.url, "POST", "/api/v1/tools", { tenant, body: tool });
		expect(res.status).toBe(201);
	}
}

async function discover(node: TestNode, tenant: string, body: Record<string, unknown>) {
	const res = await http(node.url, "POST", "/api/v1/registry/discover", { tenant, body });
	expect(res.status).toBe(200);
	return res.body.items as { tool: { name: string }; match: string; score: number }[];
}

const UMBRELLA = { query: "do I need an umbrella", limit: 5 };

/** The node's `tool_registry_discovery_vectors_pending` gauge, sampled now. */
async function vectorsPending(node: TestNode): Promise<number> {
	await (
		node.broker.getLocalService("registry") as unknown as { sampleMetrics(): Promise<void> }
	).sampleMetrics();
	const metrics = (await http(node.url, "GET", "/metrics")).body as string;
	return Number(/^tool_registry_discovery_vectors_pending(?:\{[^}]*\})? (\d+)$/m.exec(metrics)?.[1]);
}

describe("EMBEDDINGS=orchestrator", () => {
	let standIn: StandIn;
	let node: TestNode;
	const tenant = newTenant();

	beforeAll(async () => {
		standIn = await startStandIn();
		// Every service: MCP's search_tools and queued tool_discovery tasks rank the same way.
		node = await startNode({
			settings: { embeddings: "orchestrator", orchestratorUrl: standIn.upstream.url(), semanticWaitMs: 300 },
			broker: METRICS_ON
		});
	});

	afterAll(async () => {
		await node.stop();
		await standIn.upstream.close();
	});

	it("ranks lexically while tool vectors are being computed, then by meaning", async () => {
		standIn.delayMs = 1500;
		await registerTools(node, tenant);
		// No word of the question is in any tool: lexically, nothing.
		expect(await discover(node, tenant, UMBRELLA)).toEqual([]);
		expect(await discover(node, tenant, { query: "forecast", limit: 5 })).toEqual([
			expect.objectContaining({
				tool: expect.objectContaining({ name: "weather_forecast" }),
				match: "lexical"
			})
		]);
		// Operators see the backlog (the bench waits on it).
		expect(await vectorsPending(node)).toBeGreaterThanOrEqual(TOOLS.length);
		standIn.delayMs = 0;
		await eventually(async () => {
			const items = await discover(node, tenant, UMBRELLA);
			expect(items[0]).toMatchObject({ tool: { name: "weather_forecast" }, match: "semantic" });
		});
		await eventually(async () => expect(await vectorsPending(node)).toBe(0));
		const both = await discover(node, tenant, { query: "weather forecast", limit: 1 });
		expect(both[0]).toMatchObject({ tool: { name: "weather_forecast" }, match: "both" });
	});

	it("ranks the same way for MCP search_tools and for a queued tool_discovery task", async () => {
		const client = new Client({ name: "embeddings-test", version: "1.0.0" });
		await client.connect(
			new StreamableHTTPClientTransport(new URL(`${node.url}/mcp`), {
				requestInit: { headers: { authorization: `Bearer ${SERVICE_TOKEN}`, "x-tenant-id": tenant } }
			})
		);
		try {
			const found = await client.callTool({
				name: "search_tools",
				arguments: { query: UMBRELLA.query, limit: 1 }
			});
			expect((found.structuredContent as { tools: { name: string }[] }).tools[0].name).toBe(
				"weather_forecast"
			);
		} finally {
			await client.close();
		}
		const submitted = await http(node.url, "POST", "/api/v1/internal/tasks", {
			tenant,
			body: { type: "tool_discovery", payload: UMBRELLA }
		});
		expect(submitted.status).toBe(202);
		await eventually(async () => {
			const task = (
				await http(node.url, "GET", `/api/v1/internal/tasks/${submitted.body.task_id}`, { tenant })
			).body;
			expect(task.status).toBe("completed");
			expect(task.result.items[0]).toMatchObject({ tool: { name: "weather_forecast" }, match: "semantic" });
		}, 15000);
	});

	it("posts the texts with the service token, and embeds each tool once", () => {
		expect(standIn.authorizations.every(value => value === `Bearer ${SERVICE_TOKEN}`)).toBe(true);
		for (const tool of TOOLS)
			expect(standIn.texts.filter(text => text.includes(tool.description))).toHaveLength(1);
	});

	it("answers lexically, at once, while the embedding service fails, and by meaning again once it is back", async () => {
		standIn.failing = true;
		const started = Date.now();
		for (const query of ["is it going to snow", "is it going to snow today", "snow tomorrow?"]) {
			const items = await discover(node, tenant, { query, limit: 5, mode: "semantic" });
			expect(items.every(item => item.match === "lexical")).toBe(true);
		}
		expect(Date.now() - started).toBeLessThan(5000);
		standIn.failing = false;
		await eventually(async () => {
			const items = await discover(node, tenant, {
				query: "snow in the mountains",
				limit: 5,
				mode: "semantic"
			});
			expect(items[0]).toMatchObject({ tool: { name: "weather_forecast" }, match: "semantic" });
		}, 15000);
	});

	it("never delays /health behind a slow embedding, and answers discovery lexically after its wait", async () => {
		standIn.delayMs = 5000;
		const questions = Array.from({ length: 20 }, (_, i) => `umbrella question number ${i}`);
		const started = Date.now();
		const answers = Promise.all(questions.map(query => discover(node, tenant, { query, limit: 5 })));
		const health: number[] = [];
		for (let i = 0; i < 10; i++) {
			const sent = Date.now();
			expect((await http(node.url, "GET", "/health")).status).toBe(200);
			health.push(Date.now() - sent);
		}
		await answers;
		const discoveryMs = Date.now() - started;
		standIn.delayMs = 0;
		// The embedding takes 5 s; discovery waits 300 ms for it, /health not at all.
		expect(discoveryMs).toBeLessThan(4000);
		expect(Math.max(...health)).toBeLessThan(1000);
	});

	it("refuses an unknown mode and view with 422", async () => {
		for (const body of [
			{ query: "x", mode: "magic" },
			{ query: "x", view: "tiny" }
		]) {
			const res = await http(node.url, "POST", "/api/v1/registry/discover", { tenant, body });
			expect(res.status).toBe(422);
		}
	});
});

describe("EMBEDDINGS=off", () => {
	let node: TestNode;
	const tenant = newTenant();

	beforeAll(async () => {
		node = await startNode({ services: SERVICES, settings: { embeddings: "off" } });
		await registerTools(node, tenant);
	});

	afterAll(() => node.stop());

	it("ranks lexically in every mode, with no embedder at all", async () => {
		const registry = node.broker.getLocalService("registry") as unknown as { embedder: unknown };
		expect(registry.embedder).toBeNull();
		for (const mode of ["hybrid", "semantic", "lexical"]) {
			expect(await discover(node, tenant, { ...UMBRELLA, mode })).toEqual([]);
			const items = await discover(node, tenant, { query: "forecast", mode });
			expect(items.map(item => [item.tool.name, item.match])).toEqual([["weather_forecast", "lexical"]]);
		}
	});
});

describe("EMBEDDINGS=local", () => {
	let node: TestNode;
	const tenant = newTenant();

	beforeAll(async () => {
		node = await startNode({ services: SERVICES, settings: { embeddings: "local" } });
		await registerTools(node, tenant);
	});

	afterAll(() => node.stop());

	it("runs the model off the event loop: /health answers while it embeds a burst of questions", async () => {
		// The model is loaded and the tools embedded first.
		await eventually(async () => {
			const items = await discover(node, tenant, UMBRELLA);
			expect(items[0]).toMatchObject({ tool: { name: "weather_forecast" }, match: "semantic" });
		}, 120_000);
		const delay = monitorEventLoopDelay({ resolution: 10 });
		delay.enable();
		const started = Date.now();
		const burst = Promise.all(
			Array.from({ length: 64 }, (_, i) =>
				discover(node, tenant, { query: `will it pour down in town ${i}` })
			)
		);
		const health: number[] = [];
		let busy = true;
		void burst.finally(() => (busy = false));
		while (busy) {
			const sent = Date.now();
			expect((await http(node.url, "GET", "/health")).status).toBe(200);
			health.push(Date.now() - sent);
		}
		const burstMs = Date.now() - started;
		delay.disable();
		// Embedding the burst takes the worker a while; each /health meanwhile a small part of it.
		expect(health.length).toBeGreaterThan(1);
		expect(Math.max(...health)).toBeLessThan(Math.max(250, burstMs / 4));
		expect(delay.max / 1e6).toBeLessThan(Math.max(250, burstMs / 4));
	}, 180_000);

	it("answers a newcomer's first questions with the right built-in tool", async () => {
		const fresh = newTenant();
		const questions: [string, string][] = [
			["add two numbers", "calculator"],
			["subtract 5 from 12", "calculator"],
			["convert 3 hours to minutes", "calculator"],
			["what is 15 percent of 80", "calculator"],
			// No word in common: found by meaning once the built-ins' vectors are ready.
			["square root of 2", "calculator"],
			["what time is it in Tokyo", "datetime"],
			["how many days until Christmas", "datetime"]
		];
		await eventually(async () => {
			const firsts = [];
			for (const [query] of questions) firsts.push((await discover(node, fresh, { query }))[0]?.tool.name);
			expect(firsts).toEqual(questions.map(([, tool]) => tool));
		}, 120_000);
	}, 180_000);
});

describe("the local model", () => {
	const dot = (a: Float32Array, b: Float32Array) => a.reduce((sum, x, i) => sum + x * b[i], 0);

	it("answers a batch of short and long texts in order, each vector the one the text gets alone", async () => {
		const embedder = new LocalEmbedder({ threads: 1, maxQueryBatch: 32, maxBackgroundBatch: 16 });
		try {
			// Lengths far apart, so that the worker sends them to the model in more than one call.
			const texts = [
				"weather",
				"schedule a meeting with the whole team about the quarterly budget review and the travel plans",
				"convert currency",
				"rain",
				"send an email to a customer who asked about a late delivery of their order last week",
				"stock price"
			];
			const together = await embedder.embed(texts, "query");
			for (const [i, text] of texts.entries()) {
				const [alone] = await embedder.embed([text], "query");
				expect(dot(together[i], alone)).toBeGreaterThan(0.9999);
			}
			expect(dot(together[0], together[1])).toBeLessThan(0.9);
		} finally {
			await embedder.close();
		}
	}, 120_000);
});

describeWithNats("tool vectors shared by registry nodes", () => {
	describeWithRedis("through Redis", () => {
		const prefix = uniquePrefix();
		const namespace = `embeddings-${randomUUID()}`;
		const tenant = newTenant();
		let standIn: StandIn;
		const nodes: TestNode[] = [];

		beforeAll(async () => {
			standIn = await startStandIn();
			for (const id of ["a", "b"])
				nodes.push(
					await startNode({
						services: SERVICES,
						transporter: process.env.TEST_NATS_URL,
						redisUrl: process.env.TEST_REDIS_URL,
						redisPrefix: prefix,
						nodeID: `embeddings-${id}-${process.pid}`,
						broker: { namespace },
						settings: { embeddings: "orchestrator", orchestratorUrl: standIn.upstream.url() }
					})
				);
		});

		afterAll(async () => {
			for (const node of nodes) await node.stop();
			await standIn.upstream.close();
			await dropPrefix(process.env.TEST_REDIS_URL!, prefix);
		});

		it("computes each tool's vector once, on one node, and every node ranks by meaning with it", async () => {
			// Both nodes hold the tenant's index before the tools arrive.
			for (const node of nodes) await discover(node, tenant, UMBRELLA);
			await registerTools(nodes[0], tenant);
			for (const node of nodes)
				await eventually(async () => {
					const items = await discover(node, tenant, UMBRELLA);
					expect(items[0]).toMatchObject({ tool: { name: "weather_forecast" }, match: "semantic" });
				}, 15000);
			for (const tool of TOOLS)
				expect(standIn.texts.filter(text => text.includes(tool.description))).toHaveLength(1);
		});

		it("gives a node that joins later the stored vectors without computing them again", async () => {
			const before = standIn.texts.length;
			const late = await startNode({
				services: SERVICES,
				transporter: process.env.TEST_NATS_URL,
				redisUrl: process.env.TEST_REDIS_URL,
				redisPrefix: prefix,
				nodeID: `embeddings-c-${process.pid}`,
				broker: { namespace },
				settings: { embeddings: "orchestrator", orchestratorUrl: standIn.upstream.url() }
			});
			nodes.push(late);
			await eventually(async () => {
				const items = await discover(late, tenant, UMBRELLA);
				expect(items[0]).toMatchObject({ tool: { name: "weather_forecast" }, match: "semantic" });
			}, 15000);
			// Only query texts were sent: no tool description again.
			for (const tool of TOOLS)
				expect(standIn.texts.slice(before).some(text => text.includes(tool.description))).toBe(false);
		});
	});
});
