import { ServiceBroker, type Context } from "moleculer";
import { http, SERVICE_TOKEN, startNode } from "../test/support/node";
import {
	CONNECTIONS,
	describe,
	load,
	progress,
	ratio,
	runScenario,
	startBareGateway,
	serveInChild,
	type LoadStats,
	type Result,
	type Served
} from "./harness";

const SCENARIO = "catalog";
const TENANT = "bench";
const HEADERS = {
	authorization: `Bearer ${SERVICE_TOKEN}`,
	"x-tenant-id": TENANT,
	"content-type": "application/json"
};

const definition = (name: string) => ({
	name,
	type: "datetime",
	description: "bench tool",
	metadata: { tags: ["bench"] }
});

/** Our node as embedded: one process, no transporter, memory store, rate limit off. */
export function startOurs(): Promise<Served> {
	return startNode({ settings: { tenantRateLimit: 0 } });
}

/** The floor: moleculer-web alone, same paths and JSON body parser, actions that do nothing. */
export async function startBare(): Promise<Served> {
	const broker = new ServiceBroker({ logger: false });
	let seq = 0;
	broker.createService({
		name: "bare",
		actions: {
			get: (ctx: Context<{ id: string }>) => ({ id: ctx.params.id, name: "bench_tool", type: "datetime" }),
			create: (ctx: Context<Record<string, unknown>>) => ({ id: String(++seq), ...ctx.params })
		}
	});
	return startBareGateway(broker, { "GET /tools/:id": "bare.get", "POST /tools": "bare.create" });
}

// Shared by warm-up and measurement of both servers: a name is never registered twice.
let registered = 0;

async function measure(label: string, factory: "startOurs" | "startBare") {
	progress(`${label}: starting server`);
	const server = await serveInChild(__filename, factory);
	try {
		const created = await http<{ id: string }>(server.url, "POST", "/api/v1/tools", {
			tenant: TENANT,
			body: definition("bench_get")
		});
		if (created.status >= 300) throw new Error(`${label}: registering a tool answered ${created.status}`);
		const get = await load({
			title: `${label} GET`,
			server,
			path: `/api/v1/tools/${created.body.id}`,
			headers: HEADERS
		});
		const post = await load({
			title: `${label} POST`,
			server,
			path: "/api/v1/tools",
			method: "POST",
			headers: HEADERS,
			setupRequest: request => ({ ...request, body: JSON.stringify(definition(`bench_${++registered}`)) })
		});
		return { get, post };
	} finally {
		await server.stop();
	}
}

const row = (metric: string, baseline: string, ours: LoadStats, bare: LoadStats): Result => ({
	scenario: SCENARIO,
	metric,
	value: ours.rps,
	unit: "req/s",
	baseline,
	baseline_value: bare.rps,
	ratio: ratio(ours.rps, bare.rps),
	notes: `${describe("ours", ours)}; ${describe("bare", bare)}; ${CONNECTIONS} connections`
});

export async function run(): Promise<Result[]> {
	// One server at a time: the load generator needs the other core.
	const bare = await measure("bare", "startBare");
	const ours = await measure("ours", "startOurs");
	return [
		row("registrations/s (POST /api/v1/tools)", "bare moleculer-web POST", ours.post, bare.post),
		row("GET /api/v1/tools/{id} req/s", "bare moleculer-web GET", ours.get, bare.get)
	];
}

if (require.main === module) runScenario(SCENARIO, run);
