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

/** Alternating rounds; odd, so that one round holds the median. */
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);

interface Contender {
	label: string;
	server: Server;
	/** A registered tool to GET. */
	id: string;
}

async function serve(label: string, factory: "product" | "startBare"): Promise<Contender> {
	progress(`${label}: starting server`);
	const server = factory === "product" ? await serveProduct() : await serveInChild(__filename, factory);
	const created = await http<{ id: string }>(server.url, "POST", "/api/v1/tools", {
		tenant: TENANT,
		body: definition("bench_get")
	});
	if (created.status >= 300) throw new Error(`${label}: registering a tool answered ${created.status}`);
	return { label, server, id: created.body.id };
}

async function measure({ label, server, id }: Contender) {
	const get = await load({ title: `${label} GET`, server, path: `/api/v1/tools/${id}`, headers: HEADERS });
	const post = await load({
		title: `${label} POST`,
		server,
		path: "/api/v1/tools",
		method: "POST",
		headers: HEADERS,
		setupRequest: request => ({ ...request, body: JSON.stringify(definition(`bench_${++registered}`)) })
	});
	return { get, post };
}

type Measured = Awaited<ReturnType<typeof measure>>;

const row = (
	metric: string,
	baseline: string,
	pick: (m: Measured) => LoadStats,
	rounds: { ours: Measured; bare: Measured }[]
): Result => {
	// The round whose ratio is the median, its own figures together.
	const sorted = [...rounds].sort(
		(a, b) => pick(a.ours).rps / pick(a.bare).rps - pick(b.ours).rps / pick(b.bare).rps
	);
	const { ours, bare } = sorted[Math.floor(sorted.length / 2)];
	const perRound = rounds.map(r => `${pick(r.ours).rps}/${pick(r.bare).rps}`).join(", ");
	return {
		scenario: SCENARIO,
		metric,
		value: pick(ours).rps,
		unit: "req/s",
		baseline,
		baseline_value: pick(bare).rps,
		ratio: ratio(pick(ours).rps, pick(bare).rps),
		notes:
			`median of ${rounds.length} alternating rounds (ours/bare: ${perRound}); ` +
			`${describe("ours", pick(ours))}; ${describe("bare", pick(bare))}; ${CONNECTIONS} connections; ` +
			"ours is `npm start` (moleculer-runner, moleculer.config, metrics on) in its own process"
	};
};

export async function run(): Promise<Result[]> {
	// Both servers stay up, idle while the other is loaded; rounds alternate which goes first.
	const contenders = { bare: await serve("bare", "startBare"), ours: await serve("ours", "product") };
	const rounds = await alternate(contenders, ROUNDS, measure, () =>
		Promise.all([contenders.bare.server.stop(), contenders.ours.server.stop()])
	);
	return [
		row("registrations/s (POST /api/v1/tools)", "bare moleculer-web POST", m => m.post, rounds),
		row("GET /api/v1/tools/{id} req/s", "bare moleculer-web GET", m => m.get, rounds)
	];
}

if (require.main === module) runScenario(SCENARIO, run);
