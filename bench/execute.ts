import { ServiceBroker, type Context } from "moleculer";
import { http, SERVICE_TOKEN } from "../test/support/node";
import {
	alternate,
	CONNECTIONS,
	describe,
	load,
	progress,
	ratio,
	runScenario,
	startBareGateway,
	serveInChild,
	serveProduct,
	type LoadStats,
	type Result,
	type Served,
	type Server
} from "./harness";

const SCENARIO = "execute";
/** Alternating measurements of each server; odd, so that one round holds the median. */
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
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
	return startBareGateway(broker, { "POST /internal/execute": "bare.execute" });
}

interface Execution {
	status?: string;
	tool_id?: string;
	result?: { value?: unknown };
	error?: { type?: string };
}

/**
 * Executions before any load: the server must answer the right value, not merely 200. The calculator's
 * worker threads start with the first execution, which may time out on a busy machine: that one is retried.
 */
async function sample(label: string, server: Server): Promise<Execution> {
	for (let attempt = 1; ; attempt++) {
		const res = await http<Execution>(server.url, "POST", PATH, { tenant: TENANT, body: BODY });
		const answer = `${label}: sample execution answered ${res.status} ${JSON.stringify(res.body)}`;
		if (res.body?.error?.type === "timeout" && attempt < 3) {
			progress(`${answer}; retrying`);
			continue;
		}
		const value = res.body?.result?.value;
		if (res.status !== 200 || res.body.status !== "completed" || typeof value !== "number")
			throw new Error(answer);
		if (Math.abs(value - EXPECTED) > 1e-9)
			throw new Error(`${label}: ${EXPRESSION} = ${value}, not ${EXPECTED}`);
		progress(`${label}: sample ${JSON.stringify(res.body)}`);
		return res.body;
	}
}

interface Usage {
	calls: number;
	completed: number;
	failed: number;
	failures: Record<string, number>;
}

/** Our executor's own counters: a failed execution still answers 200, so non-2xx alone would miss it. */
async function usage(server: Server, toolId: string): Promise<Usage> {
	const res = await http<Usage>(server.url, "GET", `/api/v1/tools/${toolId}/stats`, { tenant: TENANT });
	if (res.status !== 200) throw new Error(`stats answered ${res.status} ${JSON.stringify(res.body)}`);
	return res.body;
}

interface Measured {
	stats: LoadStats;
	/** Executions that answered `completed`, per second of measurement. */
	completedPerS: number;
	/** Ours only: what the executor counted while measured (warm-up excluded). */
	usage?: Usage;
}

interface Contender {
	label: string;
	server: Server;
	/** Ours only: the calculator tool whose usage counters are read. */
	toolId?: string;
}

async function serve(label: string, factory: "product" | "startBare"): Promise<Contender> {
	progress(`${label}: starting server`);
	const server = factory === "product" ? await serveProduct() : await serveInChild(__filename, factory);
	const { tool_id: toolId } = await sample(label, server);
	return { label, server, toolId };
}

async function measure({ label, server, toolId }: Contender): Promise<Measured> {
	// `load` reads the server's CPU time just before and just after measuring, warm-up excluded:
	// the executor's counters are read at the same two moments.
	const snapshots: Usage[] = [];
	const watched: Server = {
		...server,
		cpuSeconds: async () => {
			if (!toolId) return server.cpuSeconds();
			const first = snapshots.length === 0;
			if (first) snapshots.push(await usage(server, toolId));
			const seconds = await server.cpuSeconds();
			if (!first) snapshots.push(await usage(server, toolId));
			return seconds;
		}
	};
	const stats = await load({
		title: label,
		server: watched,
		path: PATH,
		method: "POST",
		headers: HEADERS,
		setupRequest: request => ({ ...request, body: JSON.stringify(BODY) })
	});
	// Bare answers 200 only for a computed value: anything else shows up as non-2xx.
	if (!toolId) return { stats, completedPerS: stats.rps };
	const [before, after] = snapshots;
	const delta = (pick: (u: Usage) => number) => pick(after) - pick(before);
	const counted: Usage = {
		calls: delta(u => u.calls),
		completed: delta(u => u.completed),
		failed: delta(u => u.failed),
		failures: Object.fromEntries(
			Object.keys(after.failures).map(type => [type, delta(u => u.failures[type] ?? 0)])
		)
	};
	progress(
		`${label}: executor counted ${counted.calls} executions, ${counted.completed} completed, ` +
			`${counted.failed} failed ${JSON.stringify(counted.failures)}`
	);
	if (counted.completed === 0) throw new Error(`${label}: no execution completed`);
	const completedPerS = Math.round((stats.rps * counted.completed) / counted.calls);
	return { stats, completedPerS, usage: counted };
}

/** The round whose ratio is the median: its own figures stay together, so the row is one real measurement. */
function medianRound(rounds: { bare: Measured; ours: Measured }[]): { bare: Measured; ours: Measured } {
	const sorted = [...rounds].sort(
		(a, b) => a.ours.completedPerS / a.bare.completedPerS - b.ours.completedPerS / b.bare.completedPerS
	);
	return sorted[Math.floor(sorted.length / 2)];
}

const failuresNote = ({ usage }: Measured) => {
	if (!usage) return "";
	const share = Math.round((usage.failed / usage.calls) * 1000) / 10;
	const types = Object.entries(usage.failures)
		.filter(([, count]) => count > 0)
		.map(([type, count]) => `${count} ${type}`)
		.join(", ");
	if (!usage.failed) return `; all ${usage.calls} executions of ours completed`;
	return (
		`; NOT all completed: ${share}% of the ${usage.calls} executions of ours answered ` +
		`status "failed" (${types}; tool_error is e.g. "calculator busy" past 64 evaluations admitted ` +
		"per worker thread, or a worker killed at its memory limit)"
	);
};

const ALL_RESPONSES = "over all responses: failed executions, answered at once, included";

export async function run(): Promise<Result[]> {
	// The load generator needs the other core: one server is loaded at a time, in alternating
	// rounds; the row is the round with the median ratio.
	const contenders = { bare: await serve("bare", "startBare"), ours: await serve("ours", "product") };
	const rounds = await alternate(contenders, ROUNDS, measure, () =>
		Promise.all([contenders.bare.server.stop(), contenders.ours.server.stop()])
	);
	const { bare, ours } = medianRound(rounds);
	const perRound = rounds.map(r => `${r.ours.completedPerS}/${r.bare.completedPerS}`).join(", ");
	const row = (metric: string, unit: string, pick: (m: Measured) => number, notes: string): Result => ({
		scenario: SCENARIO,
		metric,
		value: pick(ours),
		unit,
		baseline: "bare moleculer-web + in-process mathjs",
		baseline_value: pick(bare),
		ratio: ratio(pick(ours), pick(bare)),
		notes
	});
	const answered = `ours answered ${ours.stats.rps} req/s in all`;
	return [
		row(
			"completed calculator executions/s (POST /api/v1/internal/execute)",
			"execs/s",
			m => m.completedPerS,
			`median of ${ROUNDS} alternating rounds (ours/bare: ${perRound}); ` +
				`${describe("ours", ours.stats)}; ${describe("bare", bare.stats)}; ${CONNECTIONS} connections; ` +
				answered +
				failuresNote(ours)
		),
		row("execute p50 latency (lower is better)", "ms", m => m.stats.p50, ALL_RESPONSES),
		row("execute p99 latency (lower is better)", "ms", m => m.stats.p99, ALL_RESPONSES),
		row(
			"execute server CPU while measured",
			"cores",
			m => m.stats.serverCores,
			"child process incl. worker threads; the load generator has the rest of the machine"
		)
	];
}

if (require.main === module) runScenario(SCENARIO, run);
