import fs from "fs";
import os from "os";
import path from "path";
import v8 from "v8";
import vm from "vm";
import type { ServiceBroker } from "moleculer";
import { Pool } from "undici";
import { SERVICE_TOKEN, startNode } from "../test/support/node";
import {
	CONNECTIONS,
	DURATION_S,
	describe,
	load,
	progress,
	ratio,
	runScenario,
	serveInChild,
	type LoadStats,
	type Result,
	type Served
} from "./harness";

/*
 * Discovery (POST /api/v1/registry/discover) with 1,000, 10,000 and 100,000 tools in one tenant. Each
 * size runs in a child of its own: an embedded node (api, registry, validator; memory store; rate limit
 * off; embeddings as `npm start` has them, the local model) that registers a generated corpus through
 * `registry.register`, builds the tenant's index with a first query, waits until every tool has its
 * vector, times the action in process, and then serves the load of this process: hybrid ranking (the
 * default), and lexical ranking (`mode: lexical`) on the same node as its baseline. Above
 * SEMANTIC_MAX_TOOLS the node runs with embeddings off (computing 100,000 vectors takes most of an hour
 * on two cores), and both rows are lexical. Unlike the other scenarios the node is not `npm start`'s
 * (it is embedded in the child, which must see every vector computed before timing); the notes say so.
 */

const SCENARIO = "discover";
const TENANT = "bench";
const SIZES = (process.env.BENCH_DISCOVER_SIZES ?? "1000,10000,100000").split(",").map(Number);
const DISCOVER_PATH = "/api/v1/registry/discover";
const LIMIT = 20;
/** Sequential calls timed with hrtime, in process and over HTTP; each run also stops after DURATION_S. */
const TIMED_CALLS = 2000;
/** Goals of hybrid ranking at 10,000 tools: one client p99 ≤ 25 ms, at least 400 req/s at 50 connections. */
const GOAL_TOOLS = 10000;
const GOAL_P99_MS = 25;
const GOAL_RPS = 400;
/** Registrations in flight while loading. */
const LOAD_BATCH = 200;
const HEADERS = {
	authorization: `Bearer ${SERVICE_TOKEN}`,
	"x-tenant-id": TENANT,
	"content-type": "application/json"
};

/** What agents ask: keywords... */
const KEYWORDS = [
	"weather forecast",
	"convert currency",
	"create invoice",
	"search documents",
	"track shipment",
	"summarize article",
	"database backup",
	"stock price",
	"list open incidents",
	"deploy build to server",
	"calculate tax",
	"resize image",
	"transcribe audio recording",
	"user permissions"
];
/** ...and whole sentences, whose short words ("a", "to", "the") make prefix and fuzzy search work hard. */
const SENTENCES = [
	"send an email to a customer",
	"translate text to french",
	"book a flight and a hotel",
	"schedule a meeting with the team",
	"analyze sentiment of product reviews",
	"monitor server metrics and alerts"
];
export const QUERIES = [...KEYWORDS, ...SENTENCES];
const SEMANTIC_MAX_TOOLS = Number(process.env.BENCH_DISCOVER_SEMANTIC_MAX ?? 10000);
type Mode = "hybrid" | "lexical";
const bodyOf = (query: string, mode: Mode = "hybrid") =>
	JSON.stringify({ query, limit: LIMIT, format: "native", mode });

// ---------------------------------------------------------------------------------------------------
// The corpus: varied names, descriptions and tags from a fixed seed, so every run loads the same tools.

const NOUNS = (
	"weather forecast currency exchange invoice payment email calendar meeting contact customer order " +
	"shipment inventory product price stock portfolio news article document file image video audio " +
	"transcript translation language sentiment summary search web map route traffic flight hotel booking " +
	"restaurant recipe nutrition fitness health patient appointment prescription ticket incident alert log " +
	"metric server database query backup deployment repository commit issue build test user account " +
	"password permission role team project task reminder note spreadsheet chart report dashboard survey " +
	"form lead campaign social post comment review rating tax salary expense budget loan mortgage " +
	"insurance claim vehicle parking energy sensor device home light thermostat warehouse supplier contract"
).split(" ");
const VERBS = (
	"get fetch list search create update delete send convert calculate translate summarize analyze " +
	"classify generate validate schedule cancel book track monitor export import sync compare predict " +
	"estimate resize transcribe detect"
).split(" ");
const QUALIFIERS = (
	"daily hourly realtime bulk secure regional global historical advanced simple quick detailed internal " +
	"external legacy v2 beta"
).split(" ");
const TAGS = (
	"finance crm devops hr marketing sales support analytics media productivity travel health legal " +
	"security iot ecommerce logistics communication data ai cloud monitoring billing education"
).split(" ");
const SYLLABLES = "ka lo mi ra ven tor zu pex qui dra no sel fin gro ly mar tek sto vi ban".split(" ");
/** Vendor and product words (distinct, like real API names); not one unique word per tool. */
const VENDOR_COUNT = 3000;
const PHRASES = [
	"for a given {noun}",
	"from the {noun} service",
	"and returns the {adj} {noun} records",
	"using the {noun} API of the tenant",
	"with support for {noun} and {noun2} data",
	"so an agent can answer questions about {noun}",
	"including {adj} statistics per {noun}",
	"then notifies the {noun} owner"
];

/** mulberry32: a small seeded PRNG. */
export function random(seed: number): () => number {
	let state = seed >>> 0;
	return () => {
		state = (state + 0x6d2b79f5) >>> 0;
		let t = state;
		t = Math.imul(t ^ (t >>> 15), t | 1);
		t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
		return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
	};
}

/** "search" → "Searches", "classify" → "Classifies". */
function thirdPerson(verb: string): string {
	const word = verb[0].toUpperCase() + verb.slice(1);
	if (/[^aeiou]y$/.test(word)) return `${word.slice(0, -1)}ies`;
	return /(s|x|ch|sh)$/.test(word) ? `${word}es` : `${word}s`;
}

export function corpus(size: number): Record<string, unknown>[] {
	const next = random(42);
	const pick = <T>(list: T[]) => list[Math.floor(next() * list.length)];
	const vendors = new Set<string>();
	while (vendors.size < VENDOR_COUNT)
		vendors.add(Array.from({ length: 2 + Math.floor(next() * 2) }, () => pick(SYLLABLES)).join(""));
	const vendorList = [...vendors];
	const names = new Set<string>();
	const tools: Record<string, unknown>[] = [];
	for (let i = 0; i < size; i++) {
		const vendor = pick(vendorList);
		const verb = pick(VERBS);
		const noun = pick(NOUNS);
		const qualifier = next() < 0.5 ? `_${pick(QUALIFIERS)}` : "";
		// Names are unique per tenant; a rare clash gets a number.
		let name = `${vendor}_${verb}_${noun}${qualifier}`;
		for (let k = 2; names.has(name); k++) name = `${vendor}_${verb}_${noun}${qualifier}_${k}`;
		names.add(name);
		const phrases = Array.from({ length: 1 + Math.floor(next() * 3) }, () =>
			pick(PHRASES)
				.replace("{noun}", pick(NOUNS))
				.replace("{noun2}", pick(NOUNS))
				.replace("{adj}", pick(QUALIFIERS))
		);
		const tags = new Set([noun, pick(TAGS), pick(TAGS)]);
		if (next() < 0.3) tags.add(pick(TAGS));
		tools.push({
			name,
			type: "datetime",
			description: `${thirdPerson(verb)} ${noun} ${phrases.join(", ")} via ${vendor}.`,
			metadata: { tags: [...tags] }
		});
	}
	return tools;
}

// ---------------------------------------------------------------------------------------------------
// The child: load, warm, time in process, serve.

interface Memory {
	rss: number;
	heapUsed: number;
}

interface Timings {
	all: Timing;
	/** Keyword queries only, and sentences only. */
	keywords: Timing;
	sentences: Timing;
	slowestQuery: string;
	slowestP50: number;
}

/** What the child measured before serving, handed over in a file (the harness's IPC carries the URL only). */
interface ChildReport {
	size: number;
	loadMs: number;
	/** First query: builds the tenant's index from the store. */
	indexBuildMs: number;
	/** Then until every tool has its vector (null: embeddings off). */
	vectorsMs: number | null;
	empty: Memory;
	loaded: Memory;
	indexed: Memory;
	inProcess: Timings;
	/**
	 * Lexical, every call a query never asked before (a number appended), so that no remembered ranking
	 * answers it: the cost of ranking itself.
	 */
	coldLexical: Timings;
	/** Hybrid, every call a query never asked before: its vector from the model, then ranking (null: embeddings off). */
	coldHybrid: Timings | null;
	hits: { min: number; mean: number };
}

/** Named by the parent in BENCH_DISCOVER_REPORT. */
const reportFile = (size: number) => path.join(os.tmpdir(), `bench-discover-${process.pid}-${size}.json`);

/** A full GC before each memory reading, so that readings compare live data, not garbage. */
function collector(): () => void {
	try {
		v8.setFlagsFromString("--expose-gc");
		return vm.runInNewContext("gc") as () => void;
	} catch {
		return () => undefined;
	}
}

const memory = (gc: () => void): Memory => {
	gc();
	const { rss, heapUsed } = process.memoryUsage();
	return { rss, heapUsed };
};

const percentile = (sorted: number[], p: number) =>
	sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] : 0;
const round = (value: number, digits = 2) => Math.round(value * 10 ** digits) / 10 ** digits;
const mb = (bytes: number) => Math.round(bytes / 2 ** 20);
const sinceMs = (start: bigint) => Number(process.hrtime.bigint() - start) / 1e6;

function discover(broker: ServiceBroker, query: string, mode: Mode = "hybrid") {
	return broker.call<{ items: unknown[] }, object>(
		"registry.discover",
		{ query, limit: LIMIT, format: "native", mode },
		{ meta: { tenant_id: TENANT } }
	);
}

async function register(broker: ServiceBroker, size: number): Promise<void> {
	const tools = corpus(size);
	const step = Math.max(10000, size / 4);
	for (let i = 0; i < tools.length; i += LOAD_BATCH) {
		await Promise.all(
			tools
				.slice(i, i + LOAD_BATCH)
				.map(tool => broker.call("registry.register", tool, { meta: { tenant_id: TENANT } }))
		);
		const done = Math.min(i + LOAD_BATCH, size);
		if (done % step < LOAD_BATCH && done < size) progress(`${size} tools: ${done} registered`);
	}
}

interface Timing {
	calls: number;
	p50: number;
	p99: number;
	max: number;
}

function timing(times: number[]): Timing {
	const sorted = [...times].sort((a, b) => a - b);
	const max = sorted[sorted.length - 1] ?? 0;
	const at = (p: number) => round(percentile(sorted, p));
	return { calls: sorted.length, p50: at(50), p99: at(99), max: round(max) };
}

/**
 * Sequential calls rotating the queries: `TIMED_CALLS`, or fewer when DURATION_S is up, but every query
 * at least once.
 */
async function timeCalls(call: (query: string) => Promise<void>): Promise<Timings> {
	const perQuery = QUERIES.map(() => [] as number[]);
	const deadline = Date.now() + DURATION_S * 1000;
	for (let i = 0; i < TIMED_CALLS && (i < QUERIES.length || Date.now() < deadline); i++) {
		const started = process.hrtime.bigint();
		await call(QUERIES[i % QUERIES.length]);
		perQuery[i % QUERIES.length].push(sinceMs(started));
	}
	const medians = perQuery.map(times => timing(times).p50);
	const slowest = medians.indexOf(Math.max(...medians));
	return {
		all: timing(perQuery.flat()),
		keywords: timing(perQuery.slice(0, KEYWORDS.length).flat()),
		sentences: timing(perQuery.slice(KEYWORDS.length).flat()),
		slowestQuery: QUERIES[slowest],
		slowestP50: medians[slowest]
	};
}

/** Factory run by the harness in the child; the size comes in BENCH_DISCOVER_TOOLS. */
export async function startLoaded(): Promise<Served> {
	const size = Number(process.env.BENCH_DISCOVER_TOOLS);
	const gc = collector();
	const services = ["api", "registry", "validator"];
	const embeddings = size <= SEMANTIC_MAX_TOOLS ? "local" : "off";
	const node = await startNode({ services, settings: { tenantRateLimit: 0, embeddings } });
	try {
		const empty = memory(gc);
		progress(`${size} tools: registering through registry.register`);
		let started = process.hrtime.bigint();
		await register(node.broker, size);
		const loadMs = sinceMs(started);
		const loaded = memory(gc);
		progress(`${size} tools: registered in ${Math.round(loadMs)} ms; building the index with a first query`);
		started = process.hrtime.bigint();
		await discover(node.broker, QUERIES[0]);
		const indexBuildMs = sinceMs(started);
		started = process.hrtime.bigint();
		const registry = node.broker.getLocalService("registry") as unknown as {
			discovery: { pendingVectors(): Promise<number> };
			toolVectors: { pending: number } | null;
		};
		let reported = Date.now();
		for (;;) {
			const pending = await registry.discovery.pendingVectors();
			if (!registry.toolVectors || (pending === 0 && registry.toolVectors.pending === 0)) break;
			if (Date.now() - reported > 15000) {
				progress(`${size} tools: ${pending} still waiting for their vector`);
				reported = Date.now();
			}
			await new Promise(resolve => setTimeout(resolve, 200));
		}
		const vectorsMs = registry.toolVectors ? sinceMs(started) : null;
		const indexed = memory(gc);
		progress(
			`${size} tools: index built in ${Math.round(indexBuildMs)} ms` +
				(vectorsMs === null ? "" : `, vectors in ${Math.round(vectorsMs)} ms`) +
				"; timing the action in process"
		);
		const hits = new Map<string, number>();
		const inProcess = await timeCalls(async query => {
			hits.set(query, (await discover(node.broker, query)).items.length);
		});
		let distinct = 0;
		const coldLexical = await timeCalls(async query => {
			await discover(node.broker, `${query} ${++distinct}`, "lexical");
		});
		const coldHybrid = registry.toolVectors
			? await timeCalls(async query => {
					await discover(node.broker, `${query} ${++distinct}`, "hybrid");
				})
			: null;
		const counts = [...hits.values()];
		const report: ChildReport = {
			size,
			loadMs: Math.round(loadMs),
			indexBuildMs: Math.round(indexBuildMs),
			vectorsMs: vectorsMs === null ? null : Math.round(vectorsMs),
			empty,
			loaded,
			indexed,
			inProcess,
			coldLexical,
			coldHybrid,
			hits: { min: Math.min(...counts), mean: round(counts.reduce((a, b) => a + b, 0) / counts.length, 1) }
		};
		fs.writeFileSync(process.env.BENCH_DISCOVER_REPORT!, JSON.stringify(report));
		return { url: node.url, stop: () => node.stop() };
	} catch (err) {
		await node.stop();
		throw err;
	}
}

// ---------------------------------------------------------------------------------------------------
// The parent: load the child over HTTP.

/** One client, one request at a time, timed with hrtime: latency at sub-millisecond resolution. */
async function sequential(url: string, request: (query: string) => Parameters<Pool["request"]>[0]) {
	const pool = new Pool(url, { connections: 1 });
	try {
		return await timeCalls(async query => {
			const res = await pool.request(request(query));
			await res.body.text();
			if (res.statusCode !== 200) throw new Error(`answered ${res.statusCode}`);
		});
	} finally {
		await pool.close();
	}
}

interface Measured {
	size: number;
	report: ChildReport;
	discover: LoadStats;
	/** The same load with `mode: lexical`: the baseline of hybrid ranking. */
	lexical: LoadStats;
	health: LoadStats;
	seqDiscover: Timings;
	seqLexical: Timings;
	seqHealth: Timings;
	loadAvg: number;
}

async function measure(size: number): Promise<Measured> {
	progress(`${size} tools: starting the node`);
	const file = reportFile(size);
	// The harness forks with this process's environment.
	Object.assign(process.env, { BENCH_DISCOVER_TOOLS: String(size), BENCH_DISCOVER_REPORT: file });
	const server = await serveInChild(__filename, "startLoaded").finally(() => {
		delete process.env.BENCH_DISCOVER_TOOLS;
		delete process.env.BENCH_DISCOVER_REPORT;
	});
	try {
		const report = JSON.parse(fs.readFileSync(file, "utf8")) as ChildReport;
		const { all, keywords, sentences } = report.inProcess;
		progress(
			`${size} tools: action in process p50/p99 ${all.p50}/${all.p99} ms over ${all.calls} calls ` +
				`(keywords ${keywords.p50}/${keywords.p99}, sentences ${sentences.p50}/${sentences.p99}); ` +
				`RSS ${mb(report.indexed.rss)} MB, heap ${mb(report.indexed.heapUsed)} MB`
		);
		// Unloaded latency first; the load at CONNECTIONS last, as slow queries leave a backlog behind.
		progress(`${size} tools: one client, sequential requests`);
		const request = (mode: Mode) => (query: string) => ({
			path: DISCOVER_PATH,
			method: "POST" as const,
			headers: HEADERS,
			body: bodyOf(query, mode)
		});
		const seqDiscover = await sequential(server.url, request("hybrid"));
		const seqLexical = await sequential(server.url, request("lexical"));
		const seqHealth = await sequential(server.url, () => ({ path: "/health", method: "GET" }));
		progress(
			`${size} tools: one client p50/p99 discover ${seqDiscover.all.p50}/${seqDiscover.all.p99} ms ` +
				`(keywords ${seqDiscover.keywords.p50}/${seqDiscover.keywords.p99}), ` +
				`lexical ${seqLexical.all.p50}/${seqLexical.all.p99} ms, ` +
				`health ${seqHealth.all.p50}/${seqHealth.all.p99} ms`
		);
		const health = await load({ title: `${size} tools GET /health`, server, path: "/health" });
		const loadOf = (mode: Mode) => {
			let n = 0;
			return load({
				title: `${size} tools discover, ${mode}`,
				server,
				path: DISCOVER_PATH,
				method: "POST",
				headers: HEADERS,
				setupRequest: req => ({ ...req, body: bodyOf(QUERIES[n++ % QUERIES.length], mode) })
			});
		};
		const lexical = await loadOf("lexical");
		const discover = await loadOf("hybrid");
		const loadAvg = round(os.loadavg()[0], 1);
		return { size, report, discover, lexical, health, seqDiscover, seqLexical, seqHealth, loadAvg };
	} finally {
		await server.stop();
		fs.rmSync(file, { force: true });
	}
}

const describeTimings = (label: string, t: Timings) =>
	`${label} over ${t.all.calls} calls p50/p99 ${t.all.p50}/${t.all.p99} ms (keywords ` +
	`${t.keywords.p50}/${t.keywords.p99}, sentences ${t.sentences.p50}/${t.sentences.p99}, max ${t.all.max})`;

function rows(m: Measured): Result[] {
	const { size, report: r, seqDiscover: http, seqLexical: lexical, seqHealth: health } = m;
	const label = size.toLocaleString("en-US");
	const semantic = r.vectorsMs !== null;
	const ranking = semantic ? "hybrid" : "lexical (embeddings off at this size)";
	const row = (fields: Omit<Result, "scenario">): Result => ({ scenario: SCENARIO, ...fields });
	const atGoal = size === GOAL_TOOLS && semantic;
	const p99Goal = (p99: number) =>
		atGoal
			? `; goal p99 ≤ ${GOAL_P99_MS} ms at ${label} tools: ${p99 <= GOAL_P99_MS ? "met" : "NOT met"}`
			: "";
	const rpsGoal = atGoal
		? `; goal ≥ ${GOAL_RPS} req/s at ${label} tools: ${m.discover.rps >= GOAL_RPS ? "met" : "NOT met"}`
		: "";
	const perTool = (from: Memory, to: Memory) => Math.round((to.heapUsed - from.heapUsed) / size);
	const queries = `${KEYWORDS.length} keyword queries + ${SENTENCES.length} sentences rotating, limit ${LIMIT}, native`;
	const lexicalBaseline = "mode: lexical, same node, same run";
	return [
		row({
			metric: `discover req/s, ${label} tools in one tenant, ${ranking} (POST ${DISCOVER_PATH})`,
			value: m.discover.rps,
			unit: "req/s",
			baseline: lexicalBaseline,
			baseline_value: m.lexical.rps,
			ratio: ratio(m.discover.rps, m.lexical.rps),
			notes:
				`${describe(ranking, m.discover)}; ${describe("lexical", m.lexical)}; ` +
				`${describe("GET /health", m.health)}; ${CONNECTIONS} connections; ` +
				"embedded node (api, registry, validator in one child; not npm start's runner); " +
				`${queries} (query vectors cached after their first use), ${r.hits.mean} results on average ` +
				`(min ${r.hits.min}); load avg ${m.loadAvg}${rpsGoal}`
		}),
		row({
			metric: `discover p99 latency, ${label} tools, ${ranking}, all queries, one client over HTTP (lower is better)`,
			value: http.all.p99,
			unit: "ms",
			baseline: lexicalBaseline,
			baseline_value: lexical.all.p99,
			ratio: ratio(http.all.p99, lexical.all.p99),
			notes:
				`hrtime, sequential: ${describeTimings("HTTP", http)}; ${describeTimings("lexical", lexical)}; ` +
				`GET /health p50/p99 ${health.all.p50}/${health.all.p99} ms; ` +
				`${describeTimings("action in process", r.inProcess)}, slowest "${r.inProcess.slowestQuery}" ` +
				`p50 ${r.inProcess.slowestP50} ms; at ${CONNECTIONS} connections p50/p99 ` +
				`${m.discover.p50}/${m.discover.p99} ms (whole ms); the queries rotate, so after the first ` +
				`round each is answered from the tenant's remembered rankings (see the cold row)${p99Goal(http.all.p99)}`
		}),
		row({
			metric: `discover p99 latency, ${label} tools, lexical, every query new (no remembered ranking), action in process (lower is better)`,
			value: r.coldLexical.all.p99,
			unit: "ms",
			baseline: "same queries repeated (remembered rankings), in process",
			baseline_value: r.inProcess.all.p99,
			ratio: ratio(r.coldLexical.all.p99, r.inProcess.all.p99),
			notes: `${describeTimings("cold lexical", r.coldLexical)}, slowest "${r.coldLexical.slowestQuery}" p50 ${r.coldLexical.slowestP50} ms`
		}),
		...(r.coldHybrid
			? [
					row({
						metric: `discover p99 latency, ${label} tools, hybrid, every query new (its vector from the model, then ranking), action in process (lower is better)`,
						value: r.coldHybrid.all.p99,
						unit: "ms",
						baseline: "lexical, every query new, in process",
						baseline_value: r.coldLexical.all.p99,
						ratio: ratio(r.coldHybrid.all.p99, r.coldLexical.all.p99),
						notes: `${describeTimings("cold hybrid", r.coldHybrid)}, slowest "${r.coldHybrid.slowestQuery}" p50 ${r.coldHybrid.slowestP50} ms; each call waits for its query's vector (local model, one worker thread)`
					})
				]
			: []),
		row({
			metric: `heap used with ${label} tools loaded and indexed (after GC)`,
			value: mb(r.indexed.heapUsed),
			unit: "MB",
			baseline: "same node before loading",
			baseline_value: mb(r.empty.heapUsed),
			ratio: ratio(r.indexed.heapUsed, r.empty.heapUsed),
			notes:
				`store ${perTool(r.empty, r.loaded)} B/tool + index${semantic ? " and vectors" : ""} ` +
				`${perTool(r.loaded, r.indexed)} B/tool; RSS ` +
				`${mb(r.empty.rss)} MB empty, ${mb(r.loaded.rss)} MB loaded, ${mb(r.indexed.rss)} MB indexed; ` +
				`registered in ${r.loadMs} ms (${Math.round(size / (r.loadMs / 1000))}/s via registry.register), ` +
				`first query (index build) ${r.indexBuildMs} ms` +
				(semantic
					? `, every tool's vector computed ${r.vectorsMs} ms later ` +
						`(${Math.round(size / (r.vectorsMs! / 1000))} tools/s, local model, one worker thread)`
					: "")
		})
	];
}

export async function run(): Promise<Result[]> {
	const results: Result[] = [];
	// One node at a time: the load generator needs the other core.
	for (const size of SIZES) results.push(...rows(await measure(size)));
	return results;
}

if (require.main === module) runScenario(SCENARIO, run);
