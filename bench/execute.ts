import type { AddressInfo } from "net";
import { ServiceBroker, type Context, type ServiceSchema } from "moleculer";
import ApiGateway from "moleculer-web";
import { http, SERVICE_TOKEN, startNode } from "../test/support/node";
import {
	CONNECTIONS,
	describe,
	load,
	progress,
	ratio,
	serveInChild,
	writeResults,
	type LoadStats,
	type Result,
	type Served,
	type Server
} from "./harness";

const SCENARIO = "execute";
const TENANT = "bench";
const PATH = "/api/v1/internal/execute";
const EXPRESSION = "sqrt(2) * sin(pi / 4) + 3^2";
/** sqrt(2) * sin(pi / 4) is 1 up to rounding. */
const EXPECTED = 10;
const BODY = { tool_name: "calculator", parameters: { expression: EXPRESSION } };
const HEADERS = {
	authorization: `Bearer ${SERVICE_TOKEN}`,
	"x-tenant-id": TENANT,
	"content-type": "application/json"
};

/** Our node as embedded: one process, no transporter, memory store, per-tenant rate limit off. */
export function startOurs(): Promise<Served> {
	return startNode({ settings: { tenantRateLimit: 0 } });
}

/** The floor: moleculer-web alone, same path and JSON body parser, plain mathjs on the event loop. */
export async function startBare(): Promise<Served> {
	// Loaded here so that the parent process, which only generates load, never pays for mathjs.
	const { evaluate } = require("mathjs") as typeof import("mathjs");
	const broker = new ServiceBroker({ logger: false });
	broker.createService({
		name: "bare",
		actions: {
			execute: (ctx: Context<{ parameters: { expression: string } }>) => ({
				status: "completed",
				result: { value: evaluate(ctx.params.parameters.expression) as number }
			})
		}
	});
	broker.createService({
		name: "gateway",
		mixins: [ApiGateway as unknown as ServiceSchema],
		settings: {
			port: 0,
			ip: "127.0.0.1",
			routes: [
				{
					path: "/api/v1",
					mappingPolicy: "restrict",
					bodyParsers: { json: true },
					aliases: { "POST /internal/execute": "bare.execute" }
				}
			]
		}
	});
	await broker.start();
	const gateway = broker.getLocalService("gateway") as unknown as { server: { address(): AddressInfo } };
	return { url: `http://127.0.0.1:${gateway.server.address().port}`, stop: () => broker.stop() };
}

interface Execution {
	status?: string;
	tool_id?: string;
	result?: { value?: unknown };
	error?: unknown;
}

/** One execution before any load: the server must answer the right value, not merely 200. */
async function sample(label: string, server: Server): Promise<Execution> {
	const res = await http<Execution>(server.url, "POST", PATH, { tenant: TENANT, body: BODY });
	const value = res.body?.result?.value;
	if (res.status !== 200 || res.body?.status !== "completed" || typeof value !== "number")
		throw new Error(`${label}: sample execution answered ${res.status} ${JSON.stringify(res.body)}`);
	if (Math.abs(value - EXPECTED) > 1e-9) throw new Error(`${label}: ${EXPRESSION} = ${value}, not ${EXPECTED}`);
	progress(`${label}: sample ${JSON.stringify(res.body)}`);
	return res.body;
}

interface Usage {
	calls: number;
	completed: number;
	failed: number;
	latency_ms: { p50: number; p99: number };
}

/** Our executor's own counters: a failed execution still answers 200, so non-2xx alone would miss it. */
async function usage(server: Server, toolId: string): Promise<Usage> {
	const res = await http<Usage>(server.url, "GET", `/api/v1/tools/${toolId}/stats`, { tenant: TENANT });
	if (res.status !== 200) throw new Error(`stats answered ${res.status} ${JSON.stringify(res.body)}`);
	return res.body;
}

interface Measured {
	stats: LoadStats;
	/** Ours only: executions counted by the executor during warm-up and measurement. */
	usage?: Usage;
}

async function measure(label: string, factory: "startOurs" | "startBare"): Promise<Measured> {
	progress(`${label}: starting server`);
	const server = await serveInChild(__filename, factory);
	try {
		const first = await sample(label, server);
		const before = first.tool_id ? await usage(server, first.tool_id) : undefined;
		const stats = await load({
			title: label,
			server,
			path: PATH,
			method: "POST",
			headers: HEADERS,
			setupRequest: request => ({ ...request, body: JSON.stringify(BODY) })
		});
		if (!first.tool_id || !before) return { stats };
		const after = await usage(server, first.tool_id);
		const delta: Usage = {
			calls: after.calls - before.calls,
			completed: after.completed - before.completed,
			failed: after.failed - before.failed,
			latency_ms: after.latency_ms
		};
		progress(`${label}: executor counted ${delta.calls} executions, ${delta.failed} failed`);
		if (delta.failed > 0 || delta.completed === 0)
			throw new Error(`${label}: ${delta.failed} of ${delta.calls} executions did not complete`);
		return { stats, usage: delta };
	} finally {
		await server.stop();
	}
}

const notes = (ours: Measured, bare: Measured) =>
	`${describe("ours", ours.stats)}; ${describe("bare", bare.stats)}; ${CONNECTIONS} connections; ` +
	(ours.usage
		? `executor: ${ours.usage.completed} completed, ${ours.usage.failed} failed (incl. warm-up), ` +
			`tool time p50/p99 ≤ ${ours.usage.latency_ms.p50}/${ours.usage.latency_ms.p99} ms`
		: "");

export async function run(): Promise<Result[]> {
	// One server at a time: the load generator needs the other core.
	const bare = await measure("bare", "startBare");
	const ours = await measure("ours", "startOurs");
	const row = (metric: string, unit: string, pick: (stats: LoadStats) => number): Result => ({
		scenario: SCENARIO,
		metric,
		value: pick(ours.stats),
		unit,
		baseline: "bare moleculer-web + in-process mathjs",
		baseline_value: pick(bare.stats),
		ratio: ratio(pick(ours.stats), pick(bare.stats)),
		notes: notes(ours, bare)
	});
	return [
		row("calculator executions/s (POST /api/v1/internal/execute)", "execs/s", stats => stats.rps),
		row("calculator execution p50 latency (lower is better)", "ms", stats => stats.p50),
		row("calculator execution p99 latency (lower is better)", "ms", stats => stats.p99),
		row("calculator server CPU while measured", "cores", stats => stats.serverCores)
	];
}

if (require.main === module) {
	run()
		.then(rows => {
			console.table(rows, ["metric", "value", "baseline_value", "ratio"]);
			progress(`wrote ${writeResults(SCENARIO, rows)}`);
		})
		.catch(err => {
			console.error(err);
			process.exitCode = 1;
		});
}
