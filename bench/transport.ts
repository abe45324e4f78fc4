import { ServiceBroker } from "moleculer";
import { connect, type NatsConnection } from "nats";
import {
	alternate,
	natsServerPid,
	CONNECTIONS,
	DURATION_S,
	processCpuSeconds,
	progress,
	ratio,
	runScenario,
	serveInChild,
	type Result,
	type Served,
	type Server
} from "./harness";

/*
 * What one NATS carries. A cluster's nodes talk through NATS: a synchronous execution on an executor
 * node is one Moleculer request/response, a queued task a few events. This scenario measures such
 * calls between two Moleculer nodes (the caller here, the responder in a process of its own) with
 * the product's serializer (JSON), against the same request/reply made with the `nats` client's own
 * `request` (a reply through a muxed inbox), in alternating rounds at CONNECTIONS calls in flight.
 * Moleculer's transporter publishes to per-node subjects instead of inboxes, so the client's
 * request/reply is a reference point, not a floor. CPU per call is read for the caller, the responder
 * and nats-server itself (/proc, when it runs here).
 */

const SCENARIO = "transport";
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const NATS_URL = process.env.BENCH_NATS_URL ?? "nats://127.0.0.1:4222";
const NAMESPACE = `bench-transport-${process.pid}`;
const SUBJECT = `bench.transport.${process.pid}`;
/** The size of a synchronous execution's request: a tool name, its parameters and the caller's identity. */
const PAYLOAD = {
	tool_name: "calculator",
	tenant_id: "bench",
	agent_id: "agent-1",
	parameters: { expression: "sqrt(2) * sin(pi / 4) + 3^2", note: "x".repeat(120) },
	metadata: { global_task_id: "00000000-0000-7000-8000-000000000000" }
};
const PAYLOAD_BYTES = Buffer.byteLength(JSON.stringify(PAYLOAD));

/** A node of the bench's own namespace, with the product's transporter and serializer. */
const node = (role: string) =>
	new ServiceBroker({
		nodeID: `${role}-${process.pid}`,
		namespace: process.env.BENCH_NAMESPACE,
		transporter: { type: "NATS", options: { url: NATS_URL } },
		serializer: "JSON",
		logger: false
	});

/** The responder node: one action that answers what it was sent. */
export async function startMoleculerResponder(): Promise<Served> {
	const broker = node("responder");
	broker.createService({ name: "echo", actions: { echo: ctx => ctx.params } });
	await broker.start();
	return { url: NATS_URL, stop: () => broker.stop() };
}

/** The reference: the `nats` client answering the same payload on a subject. */
export async function startNatsResponder(): Promise<Served> {
	const nc = await connect({ servers: NATS_URL });
	const subscription = nc.subscribe(process.env.BENCH_SUBJECT!);
	void (async () => {
		for await (const message of subscription) message.respond(message.data);
	})();
	await nc.flush();
	return { url: NATS_URL, stop: () => nc.drain() };
}

interface Contender {
	label: string;
	responder: Server;
	/** One call, resolved when its answer has arrived. */
	call(): Promise<unknown>;
}

interface Measured {
	callsPerS: number;
	p50: number;
	p99: number;
	/** CPU µs per call, per process. */
	caller: number;
	responder: number;
	nats?: number;
}

const percentile = (sorted: Float64Array, p: number) =>
	sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];
const round = (value: number, digits = 0) => Math.round(value * 10 ** digits) / 10 ** digits;

/** Keeps CONNECTIONS calls in flight for `seconds`; answers the calls made and their latencies (ms). */
async function drive(call: () => Promise<unknown>, seconds: number): Promise<Float64Array> {
	const latencies: number[] = [];
	const until = performance.now() + seconds * 1000;
	const loop = async () => {
		while (performance.now() < until) {
			const started = performance.now();
			await call();
			latencies.push(performance.now() - started);
		}
	};
	await Promise.all(Array.from({ length: CONNECTIONS }, loop));
	return Float64Array.from(latencies).sort();
}

async function measure({ label, responder, call }: Contender, natsPid?: number): Promise<Measured> {
	progress(`${label}: warm-up`);
	await drive(call, 2);
	progress(`${label}: measuring ${DURATION_S} s`);
	const natsBefore = natsPid ? processCpuSeconds(natsPid) : 0;
	const responderBefore = await responder.cpuSeconds();
	const callerBefore = process.cpuUsage();
	const started = performance.now();
	const latencies = await drive(call, DURATION_S);
	const elapsedS = (performance.now() - started) / 1000;
	const callerCpu = process.cpuUsage(callerBefore);
	const perCall = (seconds: number) => round((seconds / latencies.length) * 1e6, 1);
	const measured: Measured = {
		callsPerS: Math.round(latencies.length / elapsedS),
		p50: round(percentile(latencies, 0.5), 2),
		p99: round(percentile(latencies, 0.99), 2),
		caller: perCall((callerCpu.user + callerCpu.system) / 1e6),
		responder: perCall((await responder.cpuSeconds()) - responderBefore),
		nats: natsPid ? perCall(processCpuSeconds(natsPid) - natsBefore) : undefined
	};
	progress(`${label}: ${JSON.stringify(measured)}`);
	return measured;
}

const median = <T>(values: T[], pick: (value: T) => number): T =>
	[...values].sort((a, b) => pick(a) - pick(b))[Math.floor(values.length / 2)];

function cpuNote(label: string, m: Measured): string {
	const nats = m.nats === undefined ? "nats-server not on this machine" : `nats-server ${m.nats}`;
	return `${label}: ${m.callsPerS} calls/s, p50/p99 ${m.p50}/${m.p99} ms, CPU µs/call caller ${m.caller}, responder ${m.responder}, ${nats}`;
}

export async function run(): Promise<Result[]> {
	const natsPid = natsServerPid(NATS_URL);
	progress(natsPid ? `nats-server is pid ${natsPid}` : `no local nats-server listens for ${NATS_URL}`);
	process.env.BENCH_NAMESPACE = NAMESPACE;
	process.env.BENCH_SUBJECT = SUBJECT;
	const moleculerResponder = await serveInChild(__filename, "startMoleculerResponder");
	const natsResponder = await serveInChild(__filename, "startNatsResponder");
	const caller = node("caller");
	await caller.start();
	await caller.waitForServices("echo", 10_000);
	const nc: NatsConnection = await connect({ servers: NATS_URL });
	const encoded = new TextEncoder().encode(JSON.stringify(PAYLOAD));
	const contenders = {
		ours: {
			label: "Moleculer over NATS",
			responder: moleculerResponder,
			call: () => caller.call("echo.echo", PAYLOAD)
		},
		bare: {
			label: "nats client request/reply",
			responder: natsResponder,
			call: () => nc.request(SUBJECT, encoded, { timeout: 10_000 })
		}
	};
	const rounds = await alternate(
		contenders,
		ROUNDS,
		contender => measure(contender, natsPid),
		async () => {
			await nc.drain();
			await caller.stop();
			await Promise.all([moleculerResponder.stop(), natsResponder.stop()]);
		}
	);
	const ours = median(
		rounds.map(r => r.ours),
		m => m.callsPerS
	);
	const bare = median(
		rounds.map(r => r.bare),
		m => m.callsPerS
	);
	const roundsNote = `median of ${ROUNDS} alternating rounds (ours/nats client calls/s: ${rounds.map(r => `${r.ours.callsPerS}/${r.bare.callsPerS}`).join(", ")})`;
	const common =
		`${CONNECTIONS} calls in flight from one caller process, ${PAYLOAD_BYTES} B JSON request echoed back, ` +
		`responder in its own process, nats-server ${NATS_URL}`;
	const rows: Result[] = [
		{
			scenario: SCENARIO,
			metric: "request/response calls/s between two Moleculer nodes over NATS (JSON serializer)",
			value: ours.callsPerS,
			unit: "calls/s",
			baseline: "nats client request/reply (muxed inbox), same payload",
			baseline_value: bare.callsPerS,
			ratio: ratio(ours.callsPerS, bare.callsPerS),
			notes: `${roundsNote}; ${cpuNote("ours", ours)}; ${cpuNote("nats client", bare)}; ${common}`
		}
	];
	if (ours.nats !== undefined && bare.nats !== undefined)
		rows.push({
			scenario: SCENARIO,
			metric: "nats-server CPU per Moleculer call (lower is better)",
			value: ours.nats,
			unit: "µs",
			baseline: "nats client request/reply (muxed inbox), same payload",
			baseline_value: bare.nats,
			ratio: ratio(ours.nats, bare.nats),
			notes:
				`a Moleculer call is two messages (request, response) as is a bare request/reply; at this cost one ` +
				`nats-server core carries about ${Math.round(1e6 / ours.nats)} Moleculer calls/s ` +
				`(${Math.round(2e6 / ours.nats)} messages/s); ${common}`
		});
	return rows;
}

if (require.main === module) runScenario(SCENARIO, run);
