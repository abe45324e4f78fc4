import fs from "fs";
import os from "os";
import { Pool } from "undici";
import { CONFIG_VARIABLES } from "../lib/config";
import { SERVICE_TOKEN } from "../test/support/node";
import {
	CONNECTIONS,
	DURATION_S,
	describe,
	load,
	processCpuSeconds,
	progress,
	ratio,
	runScenario,
	serveProduct,
	type LoadStats,
	type Result
} from "./harness";

/*
 * Discovery (POST /api/v1/registry/discover) with 1,000, 10,000 and 100,000 tools in one tenant, on the
 * product as `npm start` runs it (harness `serveProduct`: moleculer-runner + moleculer.config, every
 * service, metrics on, the memory store), a process of its own for each size; this process only
 * generates load. It registers a generated corpus through POST /api/v1/tools, builds the tenant's
 * index with a first query, and waits until the node's `tool_registry_discovery_vectors_pending` gauge
 * says every tool has its vector (the local model computes them in the background, at the lowest CPU
 * priority: about 9 minutes for 10,000 tools on two quiet cores). Then, over HTTP: one client
 * (sequential requests timed with hrtime) and 50 connections (autocannon), lexical (`mode: lexical`)
 * and hybrid (the default), with rotating queries (answered from the tenant's remembered rankings
 * after their first use) and with every query new (ranked afresh, and in hybrid mode embedded by the
 * model first). Server CPU per request is read from /proc (every thread). Above SEMANTIC_MAX_TOOLS the
 * node runs with EMBEDDINGS=off (100,000 vectors would take most of two hours) and only lexical rows
 * are measured. `BENCH_DISCOVER_SIZES=1000` makes a run of a few minutes; `EMBEDDING_THREADS` is handed
 * to the node (unset: the product's default on this machine) and named in the notes.
 */

const SCENARIO = "discover";
const TENANT = "bench";
const SIZES = (process.env.BENCH_DISCOVER_SIZES ?? "1000,10000,100000").split(",").map(Number);
const SEMANTIC_MAX_TOOLS = Number(process.env.BENCH_DISCOVER_SEMANTIC_MAX ?? 10000);
/** Query embedding threads: `EMBEDDING_THREADS` of the bench's environment, or the product's default here. */
const EMBEDDING_THREADS = CONFIG_VARIABLES.embeddingThreads.parse(process.env.EMBEDDING_THREADS);
const DISCOVER_PATH = "/api/v1/registry/discover";
const LIMIT = 20;
/** Sequential calls timed with hrtime; each run also stops after DURATION_S (every query at least once). */
const TIMED_CALLS = 2000;
/** Registrations in flight while loading the corpus. */
const REGISTER_CONNECTIONS = 32;
/** registry.service.ts samples its gauges (tool counts, vectors pending) this often. */
const GAUGE_SAMPLE_MS = 15000;
/** Moleculer refreshes the process metrics (heap) this often. */
const PROCESS_METRICS_MS = 5000;
const VECTORS_PENDING = "tool_registry_discovery_vectors_pending";
const HEADERS = {
	authorization: `Bearer ${SERVICE_TOKEN}`,
	"x-tenant-id": TENANT,
	"content-type": "application/json"
};

type Mode = "hybrid" | "lexical";
/** `repeated`: the rotating queries; `new`: each call a query never asked before. */
type Queries = "repeated" | "new";

/** Goals at a size, by ranking (issue #15: hybrid; issue #14: lexical). */
const GOALS: { tools: number; mode: Mode; p99Ms: number; rps: number }[] = [
	{ tools: 10000, mode: "hybrid", p99Ms: 25, rps: 400 },
	{ tools: 10000, mode: "lexical", p99Ms: 10, rps: 1500 },
	{ tools: 100000, mode: "lexical", p99Ms: 30, rps: 200 }
];

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
// Measuring the product from outside.

type Product = Awaited<ReturnType<typeof serveProduct>>;

interface Timing {
	calls: number;
	p50: number;
	p99: number;
	max: number;
}

interface Timings {
	all: Timing;
	/** Keyword queries only, and sentences only. */
	keywords: Timing;
	sentences: Timing;
	slowestQuery: string;
	slowestP50: number;
	/** Server CPU (all threads) per call. */
	cpuUs: number;
}

interface Memory {
	rss: number;
	heapUsed: number;
}

const percentile = (sorted: number[], p: number) =>
	sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] : 0;
const round = (value: number, digits = 2) => Math.round(value * 10 ** digits) / 10 ** digits;
const mb = (bytes: number) => Math.round(bytes / 2 ** 20);
const sinceMs = (start: bigint) => Number(process.hrtime.bigint() - start) / 1e6;
const delay = (ms: number) => new Promise<void>(resolve => setTimeout(resolve, ms));
const bodyOf = (query: string, mode: Mode) => JSON.stringify({ query, limit: LIMIT, format: "native", mode });

function timing(times: number[]): Timing {
	const sorted = [...times].sort((a, b) => a - b);
	const at = (p: number) => round(percentile(sorted, p));
	return { calls: sorted.length, p50: at(50), p99: at(99), max: round(sorted[sorted.length - 1] ?? 0) };
}

/** A number appended to each query makes it one never asked before; one counter for the whole run. */
let asked = 0;
const queryText = (query: string, queries: Queries) => (queries === "new" ? `${query} ${++asked}` : query);

/**
 * One client, one request at a time, rotating the queries, timed with hrtime: `TIMED_CALLS`, or fewer
 * when DURATION_S is up, but every query at least once; server CPU read before and after.
 */
async function sequential(node: Product, path: string, body?: (query: string) => string): Promise<Timings> {
	const pool = new Pool(node.url, { connections: 1 });
	const perQuery = QUERIES.map(() => [] as number[]);
	const deadline = Date.now() + DURATION_S * 1000;
	const cpu = processCpuSeconds(node.pid);
	try {
		for (let i = 0; i < TIMED_CALLS && (i < QUERIES.length || Date.now() < deadline); i++) {
			const query = QUERIES[i % QUERIES.length];
			const started = process.hrtime.bigint();
			const res = await pool.request(
				body
					? { path, method: "POST", headers: HEADERS, body: body(query) }
					: { path, method: "GET", headers: HEADERS }
			);
			await res.body.text();
			if (res.statusCode !== 200) throw new Error(`${path} answered ${res.statusCode}`);
			perQuery[i % QUERIES.length].push(sinceMs(started));
		}
	} finally {
		await pool.close();
	}
	const calls = perQuery.flat().length;
	const medians = perQuery.map(times => timing(times).p50);
	const slowest = medians.indexOf(Math.max(...medians));
	return {
		all: timing(perQuery.flat()),
		keywords: timing(perQuery.slice(0, KEYWORDS.length).flat()),
		sentences: timing(perQuery.slice(KEYWORDS.length).flat()),
		slowestQuery: QUERIES[slowest],
		slowestP50: medians[slowest],
		cpuUs: Math.round(((processCpuSeconds(node.pid) - cpu) / calls) * 1e6)
	};
}

/** One sample of the node's Prometheus text, or null when the family is absent. */
async function metric(node: Product, name: string): Promise<number | null> {
	const res = await fetch(`${node.url}/metrics`, { headers: { authorization: `Bearer ${SERVICE_TOKEN}` } });
	if (res.status !== 200) throw new Error(`GET /metrics answered ${res.status}`);
	const line = (await res.text()).split("\n").find(l => l.startsWith(`${name}{`) || l.startsWith(`${name} `));
	return line === undefined ? null : Number(line.slice(line.lastIndexOf(" ") + 1));
}

/** RSS from /proc now; heap used as /metrics reports it (refreshed every 5 s, no forced GC). */
async function memory(node: Product): Promise<Memory> {
	await delay(PROCESS_METRICS_MS + 500);
	const status = fs.readFileSync(`/proc/${node.pid}/status`, "utf8");
	const rssKb = Number(/^VmRSS:\s+(\d+)/m.exec(status)?.[1] ?? 0);
	return { rss: rssKb * 1024, heapUsed: (await metric(node, "process_memory_heap_size_used")) ?? 0 };
}

/** Registers the corpus through the API, `REGISTER_CONNECTIONS` requests in flight. */
async function register(node: Product, size: number): Promise<void> {
	const tools = corpus(size);
	const step = Math.max(10000, size / 4);
	const pool = new Pool(node.url, { connections: REGISTER_CONNECTIONS });
	let next = 0;
	const client = async () => {
		while (next < tools.length) {
			const tool = tools[next++];
			const res = await pool.request({
				path: "/api/v1/tools",
				method: "POST",
				headers: HEADERS,
				body: JSON.stringify(tool)
			});
			const text = await res.body.text();
			if (res.statusCode !== 201)
				throw new Error(`registering ${String(tool.name)} answered ${res.statusCode}: ${text.slice(0, 300)}`);
			if (next % step === 0 && next < size) progress(`${size} tools: ${next} registered`);
		}
	};
	try {
		await Promise.all(Array.from({ length: REGISTER_CONNECTIONS }, client));
	} finally {
		await pool.close();
	}
}

/** Asks until discovery answers 200: the first query builds the tenant's index (a 504 means not yet). */
async function buildIndex(node: Product): Promise<void> {
	for (;;) {
		const res = await fetch(`${node.url}${DISCOVER_PATH}`, {
			method: "POST",
			headers: HEADERS,
			body: bodyOf(QUERIES[0], "lexical")
		});
		await res.text();
		if (res.status === 200) return;
		if (res.status !== 504) throw new Error(`the first discovery answered ${res.status}`);
	}
}

/**
 * Waits until the node has no tool vector pending. The gauge is sampled every GAUGE_SAMPLE_MS, so only
 * a reading taken one interval after the last registration is sure to show the backlog it left.
 */
async function waitForVectors(node: Product, size: number, registered: number): Promise<void> {
	await delay(Math.max(0, registered + GAUGE_SAMPLE_MS + 1000 - Date.now()));
	let reported = Date.now();
	for (;;) {
		const pending = await metric(node, VECTORS_PENDING);
		if (pending === null) throw new Error(`${VECTORS_PENDING} is missing from /metrics`);
		if (pending === 0) return;
		if (Date.now() - reported >= 30000) {
			progress(`${size} tools: ${pending} tool vectors pending`);
			reported = Date.now();
		}
		await delay(1000);
	}
}

/** How many results each query gets, and how many of them hybrid ranking found by meaning. */
async function hits(node: Product, mode: Mode): Promise<{ mean: number; min: number; byMeaning: number }> {
	const answers = await Promise.all(
		QUERIES.map(async query => {
			const res = await fetch(`${node.url}${DISCOVER_PATH}`, {
				method: "POST",
				headers: HEADERS,
				body: bodyOf(query, mode)
			});
			return ((await res.json()) as { items: { match: string }[] }).items;
		})
	);
	const counts = answers.map(items => items.length);
	const byMeaning = answers.flat().filter(item => item.match !== "lexical").length;
	return {
		mean: round(counts.reduce((a, b) => a + b, 0) / counts.length, 1),
		min: Math.min(...counts),
		byMeaning: round(byMeaning / answers.length, 1)
	};
}

interface Measured {
	size: number;
	semantic: boolean;
	registerMs: number;
	indexBuildMs: number;
	/** From the first registration until no vector was pending (null: embeddings off). */
	vectorsMs: number | null;
	empty: Memory;
	loaded: Memory;
	indexed: Memory;
	hits: { mean: number; min: number; byMeaning: number };
	/** One client, by mode and queries; `health` is GET /health. */
	oneClient: Record<string, Timings>;
	/** At CONNECTIONS connections, same keys. */
	loaded50: Record<string, LoadStats>;
	loadAvg: number;
}

const key = (mode: Mode, queries: Queries) => `${mode} ${queries}`;

async function measure(size: number): Promise<Measured> {
	const semantic = size <= SEMANTIC_MAX_TOOLS;
	const embeddings = semantic ? `EMBEDDINGS=local EMBEDDING_THREADS=${EMBEDDING_THREADS}` : "EMBEDDINGS=off";
	progress(`${size} tools: starting npm start's node (${embeddings})`);
	const node = await serveProduct(
		semantic ? { EMBEDDINGS: "local", EMBEDDING_THREADS: String(EMBEDDING_THREADS) } : { EMBEDDINGS: "off" }
	);
	try {
		const empty = await memory(node);
		progress(`${size} tools: registering through POST /api/v1/tools`);
		const started = Date.now();
		await register(node, size);
		const registered = Date.now();
		const loaded = await memory(node);
		progress(
			`${size} tools: registered in ${registered - started} ms; building the index with a first query`
		);
		const building = Date.now();
		await buildIndex(node);
		const indexBuildMs = Date.now() - building;
		let vectorsMs: number | null = null;
		if (semantic) {
			progress(`${size} tools: index built in ${indexBuildMs} ms; waiting for every tool's vector`);
			await waitForVectors(node, size, registered);
			vectorsMs = Date.now() - started;
			progress(
				`${size} tools: every vector ${Math.round(vectorsMs / 1000)} s after the first registration ` +
					`(${Math.round(size / (vectorsMs / 1000))} tools/s; ±${GAUGE_SAMPLE_MS / 1000} s, the gauge's sampling)`
			);
		}
		const indexed = await memory(node);
		const modes: Mode[] = semantic ? ["lexical", "hybrid"] : ["lexical"];
		const found = await hits(node, semantic ? "hybrid" : "lexical");
		// Unloaded latency first; the load at CONNECTIONS last, as slow queries leave a backlog behind.
		const oneClient: Record<string, Timings> = { health: await sequential(node, "/health") };
		for (const mode of modes)
			for (const queries of ["repeated", "new"] as Queries[]) {
				const t = await sequential(node, DISCOVER_PATH, query => bodyOf(queryText(query, queries), mode));
				oneClient[key(mode, queries)] = t;
				progress(
					`${size} tools: one client, ${mode}, ${queries} queries: p50/p99 ${t.all.p50}/${t.all.p99} ms, ${t.cpuUs} µs CPU/call`
				);
			}
		const loaded50: Record<string, LoadStats> = {
			health: await load({
				title: `${size} tools GET /health`,
				server: node,
				path: "/health",
				headers: HEADERS
			})
		};
		for (const mode of modes)
			for (const queries of ["repeated", "new"] as Queries[]) {
				let n = 0;
				loaded50[key(mode, queries)] = await load({
					title: `${size} tools discover, ${mode}, ${queries} queries`,
					server: node,
					path: DISCOVER_PATH,
					method: "POST",
					headers: HEADERS,
					setupRequest: req => ({
						...req,
						body: bodyOf(queryText(QUERIES[n++ % QUERIES.length], queries), mode)
					})
				});
			}
		return {
			size,
			semantic,
			registerMs: registered - started,
			indexBuildMs,
			vectorsMs,
			empty,
			loaded,
			indexed,
			hits: found,
			oneClient,
			loaded50,
			loadAvg: round(os.loadavg()[0], 1)
		};
	} finally {
		await node.stop();
	}
}

const describeTimings = (label: string, t: Timings) =>
	`${label} over ${t.all.calls} calls p50/p99 ${t.all.p50}/${t.all.p99} ms (keywords ` +
	`${t.keywords.p50}/${t.keywords.p99}, sentences ${t.sentences.p50}/${t.sentences.p99}, max ${t.all.max}), ` +
	`${t.cpuUs} µs CPU/call, slowest "${t.slowestQuery}" p50 ${t.slowestP50} ms`;

const PRODUCT =
	"`npm start` (moleculer-runner, moleculer.config, every service, metrics on, memory store) in its own process";

function rows(m: Measured): Result[] {
	const { size } = m;
	const label = size.toLocaleString("en-US");
	const queriesLabel = (queries: Queries) =>
		queries === "repeated" ? "repeated queries" : "every query new (no remembered ranking)";
	const goalOf = (mode: Mode) => GOALS.find(goal => goal.tools === size && goal.mode === mode);
	const setup =
		`${PRODUCT}, ${m.semantic ? `EMBEDDINGS=local, EMBEDDING_THREADS=${EMBEDDING_THREADS}` : "EMBEDDINGS=off"}; ${KEYWORDS.length} keyword queries + ` +
		`${SENTENCES.length} sentences rotating (a number appended to make each new), limit ${LIMIT}, native, ` +
		`${m.hits.mean} results on average (min ${m.hits.min})` +
		(m.semantic ? ` (${m.hits.byMeaning} found by meaning)` : "") +
		`; load avg ${m.loadAvg}`;
	const result: Result[] = [];
	const modes: Mode[] = m.semantic ? ["lexical", "hybrid"] : ["lexical"];
	for (const mode of modes)
		for (const queries of ["repeated", "new"] as Queries[]) {
			const goal = goalOf(mode);
			const stats = m.loaded50[key(mode, queries)];
			const t = m.oneClient[key(mode, queries)];
			// Lexical against the gateway's floor, or against itself repeated; hybrid against lexical.
			const baselineKey =
				mode === "hybrid"
					? key("lexical", queries)
					: queries === "new"
						? key("lexical", "repeated")
						: "health";
			const baselineLabel =
				baselineKey === "health"
					? "GET /health, same node, same run"
					: `${baselineKey.replace(" ", ", ")} queries, same node, same run`;
			const baseStats = m.loaded50[baselineKey];
			const baseTimings = m.oneClient[baselineKey];
			result.push(
				{
					scenario: SCENARIO,
					metric: `discover req/s at ${CONNECTIONS} connections, ${label} tools in one tenant, ${mode}, ${queriesLabel(queries)}`,
					value: stats.rps,
					unit: "req/s",
					baseline: baselineLabel,
					baseline_value: baseStats.rps,
					ratio: ratio(stats.rps, baseStats.rps),
					notes:
						`${describe(mode, stats)}; baseline ${describe(baselineKey, baseStats)}; ${setup}` +
						(goal ? `; goal ≥ ${goal.rps} req/s: ${stats.rps >= goal.rps ? "met" : "NOT met"}` : "")
				},
				{
					scenario: SCENARIO,
					metric: `discover p99 latency, one client, ${label} tools, ${mode}, ${queriesLabel(queries)} (lower is better)`,
					value: t.all.p99,
					unit: "ms",
					baseline: baselineLabel,
					baseline_value: baseTimings.all.p99,
					ratio: ratio(t.all.p99, baseTimings.all.p99),
					notes:
						`hrtime, sequential over HTTP: ${describeTimings(mode, t)}; baseline ${describeTimings(baselineKey, baseTimings)}` +
						(mode === "hybrid" && queries === "new"
							? "; each call waits for its query's vector from the model"
							: "") +
						(goal ? `; goal p99 ≤ ${goal.p99Ms} ms: ${t.all.p99 <= goal.p99Ms ? "met" : "NOT met"}` : "")
				}
			);
		}
	result.push({
		scenario: SCENARIO,
		metric: `heap used with ${label} tools registered and indexed${m.semantic ? ", with vectors" : ""}`,
		value: mb(m.indexed.heapUsed),
		unit: "MB",
		baseline: "same node before registering",
		baseline_value: mb(m.empty.heapUsed),
		ratio: ratio(m.indexed.heapUsed, m.empty.heapUsed),
		notes:
			// Without a forced GC a reading moves by megabytes: a per-tool figure means something from 10,000 tools on.
			`as /metrics reports it (no forced GC): ${Math.round((m.indexed.heapUsed - m.empty.heapUsed) / size)} B/tool ` +
			`for store, index${m.semantic ? " and vectors" : ""}; RSS ${mb(m.empty.rss)} MB empty (the model's ` +
			`workers included), ${mb(m.loaded.rss)} MB registered, ${mb(m.indexed.rss)} MB indexed; registered in ` +
			`${m.registerMs} ms (${Math.round(size / (m.registerMs / 1000))}/s through POST /api/v1/tools, ` +
			`${REGISTER_CONNECTIONS} in flight), ` +
			`first query (index build) ${m.indexBuildMs} ms` +
			(m.vectorsMs === null
				? ""
				: `, every tool's vector ${Math.round(m.vectorsMs / 1000)} s after the first registration ` +
					`(${Math.round(size / (m.vectorsMs / 1000))} tools/s, local model, one background worker at the ` +
					`lowest priority; read from the vectors-pending gauge, sampled every ${GAUGE_SAMPLE_MS / 1000} s)`) +
			`; ${setup}`
	});
	return result;
}

export async function run(): Promise<Result[]> {
	const results: Result[] = [];
	// One node at a time: the load generator needs the other core.
	for (const size of SIZES) results.push(...rows(await measure(size)));
	return results;
}

if (require.main === module) runScenario(SCENARIO, run);
