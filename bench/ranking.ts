import { weightedFusion } from "../lib/discovery/fusion";
import { MIN_COSINE, TenantIndex, mayUse, type DiscoverMode } from "../lib/discovery/tenant-index";
import { cosine, normalize, quantize, type QuantizedVector } from "../lib/discovery/vectors";
import { miniSearchReference } from "../test/support/minisearch-reference";
import type { StoredTool } from "../types/wire";
import { corpus, QUERIES, random } from "./discover";
import { progress, runScenario, type Result } from "./harness";

/*
 * Ranking alone, in process: queries never asked before (no remembered ranking answers them) against
 * one tenant's index of generated tools (the `discover` scenario's corpus), lexical and hybrid, CPU
 * per query (process.cpuUsage) and p50/p99. Baseline, on the same queries in the same run, each
 * query alternating between the two: what discovery did before, MiniSearch for the words and, in
 * hybrid mode, a cosine call per tool and a full sort. The vectors are made up (seeded, clustered by
 * the tool's noun and verb): the cost of a scan does not depend on what they mean, and with most
 * tools above the cosine floor the old full sort meets its worst case. The notes say whether both
 * answered the same tools in the same order.
 */

const SCENARIO = "ranking";
const SIZE = Number(process.env.BENCH_RANKING_TOOLS ?? 10000);
const ROUNDS = Number(process.env.BENCH_RANKING_ROUNDS ?? 30);
const LIMIT = 20;
/** As TenantIndex: candidates each ranking hands to fusion beyond the page. */
const DEPTH = LIMIT + 50;
const DIMS = 512;

function vectorSpace() {
	const next = random(7);
	const noise = () => Float32Array.from({ length: DIMS }, () => next() - 0.5);
	const common = noise();
	const topics = new Map<string, Float32Array>();
	const topic = (word: string) => topics.get(word) ?? topics.set(word, noise()).get(word)!;
	const mix = (parts: [number, Float32Array][]) => {
		const sum = new Float32Array(DIMS);
		for (const [weight, v] of parts) for (let i = 0; i < DIMS; i++) sum[i] += weight * v[i];
		return normalize(sum);
	};
	return {
		tool: (name: string): QuantizedVector => {
			const [, verb, noun] = name.split("_");
			return quantize(
				mix([
					[0.8, common],
					[0.6, topic(noun)],
					[0.4, topic(verb)],
					[0.5, noise()]
				])
			);
		},
		query: (text: string) =>
			mix([
				[0.8, common],
				...text.split(" ").map(w => [0.6, topic(w)] as [number, Float32Array]),
				[0.5, noise()]
			])
	};
}

function tools(): StoredTool[] {
	return corpus(SIZE).map((definition, i) => ({
		id: `0193a7c2-5e1f-7b2a-9c4d-${String(i).padStart(12, "0")}`,
		tenant_id: "bench",
		name: definition.name as string,
		description: definition.description as string,
		type: "datetime",
		parameters: { type: "object", properties: { when: { type: "string", description: "the moment" } } },
		config: {},
		metadata: definition.metadata as Record<string, unknown>,
		permissions: { agents: ["*"] },
		timeout_ms: 30000,
		definition_hash: `sha256:${i}`,
		version: 1,
		status: "active",
		health: { state: "healthy" },
		created_at: "",
		updated_at: ""
	}));
}

interface Measured {
	cpu: number;
	times: number[];
}

const percentile = (sorted: number[], p: number) =>
	sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
const round = (value: number, digits = 2) => Math.round(value * 10 ** digits) / 10 ** digits;

function timed(measured: Measured, rank: () => string[]): string[] {
	const cpu = process.cpuUsage();
	const started = process.hrtime.bigint();
	const names = rank();
	measured.times.push(Number(process.hrtime.bigint() - started) / 1e6);
	const used = process.cpuUsage(cpu);
	measured.cpu += (used.user + used.system) / 1000;
	return names;
}

export async function run(): Promise<Result[]> {
	const catalog = tools();
	const space = vectorSpace();
	const vectors = catalog.map(tool => space.tool(tool.name));
	progress(`ranking: indexing ${SIZE} tools twice (the index, and MiniSearch as before)`);
	const index = new TenantIndex("bench");
	catalog.forEach((tool, i) => index.upsert(tool, vectors[i]));
	const before = miniSearchReference(catalog);
	const byId = new Map(catalog.map(tool => [tool.id, tool]));
	const usable = (tool: StoredTool | undefined) =>
		tool !== undefined && tool.status === "active" && mayUse(tool, null);

	const baseline = (text: string, mode: DiscoverMode, vector: Float32Array): string[] => {
		const lexical = before
			.search(text, { filter: result => usable(byId.get(result.id as string)) })
			.map(result => ({ id: result.id as string, score: result.score }));
		if (mode === "lexical") return lexical.slice(0, LIMIT).map(({ id }) => byId.get(id)!.name);
		const semantic = catalog
			.map((tool, i) => ({ id: tool.id, score: cosine(vector, vectors[i]) }))
			.filter(({ id, score }) => score >= MIN_COSINE && usable(byId.get(id)))
			.sort((a, b) => b.score - a.score)
			.slice(0, DEPTH);
		return weightedFusion(lexical.slice(0, DEPTH), semantic, 0.4, MIN_COSINE)
			.slice(0, LIMIT)
			.map(({ id }) => byId.get(id)!.name);
	};

	const rows: Result[] = [];
	let asked = 0;
	for (const mode of ["lexical", "hybrid"] as DiscoverMode[]) {
		progress(`ranking: ${mode}, ${ROUNDS} rounds of ${QUERIES.length} never-asked queries`);
		const ours: Measured = { cpu: 0, times: [] };
		const theirs: Measured = { cpu: 0, times: [] };
		let same = 0;
		// A first round unmeasured: both warm up (optimised code, caches of the stemmer).
		for (let round = -1; round < ROUNDS; round++)
			for (const query of QUERIES) {
				const text = `${query} ${++asked}`;
				const vector = space.query(query);
				const scratch: Measured = { cpu: 0, times: [] };
				const answer = timed(round < 0 ? scratch : ours, () =>
					index.query({ query: text, limit: LIMIT, agentId: null, mode, vector }).map(r => r.tool.name)
				);
				const reference = timed(round < 0 ? scratch : theirs, () => baseline(text, mode, vector));
				if (round >= 0 && JSON.stringify(answer) === JSON.stringify(reference)) same++;
			}
		const summary = (m: Measured) => {
			const sorted = [...m.times].sort((a, b) => a - b);
			return { cpu: m.cpu / m.times.length, p50: percentile(sorted, 50), p99: percentile(sorted, 99) };
		};
		const a = summary(ours);
		const b = summary(theirs);
		const calls = ours.times.length;
		const was =
			mode === "lexical"
				? "MiniSearch, as before"
				: "MiniSearch + a cosine per tool and a full sort, as before";
		rows.push(
			{
				scenario: SCENARIO,
				metric: `ranking CPU per never-asked query, ${SIZE.toLocaleString("en-US")} tools, ${mode}, in process (lower is better)`,
				value: round(a.cpu),
				unit: "ms",
				baseline: was,
				baseline_value: round(b.cpu),
				ratio: round(a.cpu / b.cpu),
				notes:
					`${calls} queries each; wall p50/p99 ${round(a.p50)}/${round(a.p99)} ms (before ` +
					`${round(b.p50)}/${round(b.p99)} ms); same ${LIMIT} tools in the same order for ${same} of ${calls}; ` +
					"generated tools, made-up vectors"
			},
			{
				scenario: SCENARIO,
				metric: `ranking p99 latency, never-asked queries, ${SIZE.toLocaleString("en-US")} tools, ${mode}, in process (lower is better)`,
				value: round(a.p99),
				unit: "ms",
				baseline: was,
				baseline_value: round(b.p99),
				ratio: round(a.p99 / b.p99),
				notes: `wall time of TenantIndex.query alone (no HTTP, no action, no query embedding), ${calls} queries`
			}
		);
	}
	return rows;
}

if (require.main === module) runScenario(SCENARIO, run);
