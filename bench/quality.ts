import { BUILTIN_TOOLS } from "../lib/builtin-tools";
import { definitionHash } from "../lib/definition-hash";
import { LocalEmbedder } from "../lib/discovery/embedders/local";
import { MIN_COSINE, TenantIndex, type DiscoverQuery, type RankedTool } from "../lib/discovery/tenant-index";
import { embeddingText, processTerm, tokenize } from "../lib/discovery/text";
import { quantize } from "../lib/discovery/vectors";
import {
	CORPUS_QUERIES,
	EVERYDAY_HELD_OUT,
	EVERYDAY_QUERIES,
	HELD_OUT_QUERIES,
	TOOL_CORPUS,
	type CorpusQuery
} from "../test/fixtures/tool-corpus";
import { relevance, type Relevance } from "../test/support/relevance";
import type { StoredTool, ToolDefinition } from "../types/wire";
import { toolFor } from "../tools";
import { progress, runScenario, type Result } from "./harness";

/*
 * Discovery relevance on the fixed corpus of 61 realistic tools (plus the built-in global calculator
 * and datetime): recall@1, recall@5 and MRR of lexical, semantic and hybrid ranking, on keyword-style
 * requests and on everyday questions, each with a held-out set that chose nothing. Ranking runs as
 * the service runs it (the tenant index, the model in a worker thread), in this process: relevance
 * does not depend on HTTP. Also measured: what int8 vectors cost in recall against Float32, and the
 * model's time per query.
 */

const SCENARIO = "quality";
const TENANT = "quality";
const DEPTH = 20;

const SETS: {
	name: string;
	queries: CorpusQuery[];
	goal?: { metric: "recall1" | "recall5"; min: number };
}[] = [
	{ name: "keyword requests", queries: CORPUS_QUERIES, goal: { metric: "recall1", min: 0.9 } },
	{ name: "keyword requests, held out", queries: HELD_OUT_QUERIES },
	{ name: "everyday questions", queries: EVERYDAY_QUERIES, goal: { metric: "recall5", min: 0.9 } },
	{ name: "everyday questions, held out", queries: EVERYDAY_HELD_OUT }
];

type Variant = "lexical" | "semantic" | "semantic float32" | "hybrid" | "hybrid rrf";
/** `hybrid` is what the service serves (weighted fusion); `hybrid rrf` the alternative it was measured against. */
const VARIANTS: Variant[] = ["lexical", "semantic", "semantic float32", "hybrid", "hybrid rrf"];

function stored(definition: ToolDefinition, tenantId: string, i: number): StoredTool {
	const complete = {
		name: definition.name,
		description: definition.description ?? "",
		type: definition.type,
		parameters: definition.parameters ?? toolFor(definition.type)!.parameters,
		config: definition.config ?? {},
		metadata: definition.metadata ?? {},
		permissions: { agents: ["*"] },
		timeout_ms: 30000
	};
	return {
		id: `tool-${i}`,
		tenant_id: tenantId,
		...complete,
		definition_hash: definitionHash(complete),
		version: 1,
		status: "active",
		health: { state: "unknown" },
		created_at: "",
		updated_at: ""
	};
}

const percentile = (sorted: number[], p: number) =>
	sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
const round = (value: number, digits = 3) => Math.round(value * 10 ** digits) / 10 ** digits;

export async function run(): Promise<Result[]> {
	const tools = [
		...TOOL_CORPUS.map((tool, i) => stored(tool as unknown as ToolDefinition, TENANT, i)),
		...BUILTIN_TOOLS.map((tool, i) => stored(tool, "*", TOOL_CORPUS.length + i))
	];
	const embedder = new LocalEmbedder({ threads: 1, maxQueryBatch: 32, maxBackgroundBatch: 16 });
	try {
		progress(`embedding ${tools.length} tools (the model loads in its worker first)`);
		const toolVectors = await embedder.embed(tools.map(embeddingText), "background");
		const index = new TenantIndex(TENANT);
		tools.forEach((tool, i) => index.upsert(tool, quantize(toolVectors[i])));

		// Time per query: sequential single queries, as a lone agent would send them, none cached.
		const questions = SETS.flatMap(set => set.queries.map(q => q.query));
		const times: number[] = [];
		const queryVectors = new Map<string, Float32Array>();
		for (const question of questions) {
			const started = process.hrtime.bigint();
			const [vector] = await embedder.embed([question], "query");
			times.push(Number(process.hrtime.bigint() - started) / 1e6);
			queryVectors.set(question, vector);
		}
		const sorted = [...times].sort((a, b) => a - b);
		const batchStarted = process.hrtime.bigint();
		await embedder.embed(questions, "query");
		const batchMs = Number(process.hrtime.bigint() - batchStarted) / 1e6;

		const cosines = (question: string) => {
			const vector = queryVectors.get(question)!;
			return tools.map((tool, i) => ({
				tool,
				score: toolVectors[i].reduce((sum, x, k) => sum + x * vector[k], 0)
			}));
		};
		/** Each served ranking's answer to each question, with scores, for explaining the misses. */
		const answers = new Map<string, RankedTool[]>();
		const rank = (variant: Variant) => async (question: string) => {
			const vector = queryVectors.get(question)!;
			if (variant === "semantic float32")
				return cosines(question)
					.filter(({ score }) => score >= MIN_COSINE)
					.sort((a, b) => b.score - a.score)
					.slice(0, DEPTH)
					.map(({ tool }) => tool.name);
			const query: DiscoverQuery = {
				query: question,
				limit: DEPTH,
				agentId: null,
				vector,
				mode: variant === "lexical" ? "lexical" : variant === "semantic" ? "semantic" : "hybrid",
				fusion: variant === "hybrid rrf" ? "rrf" : "weighted"
			};
			const answer = index.query(query);
			answers.set(JSON.stringify([variant, question]), answer);
			return answer.map(({ tool }) => tool.name);
		};

		/**
		 * Where a tool came in each served ranking, its cosine, and its lexical score part by part as
		 * `variant`'s ranking counts it (multiplied by the terms matched in lexical mode only).
		 */
		const account = (question: string, name: string, variant: Variant) => {
			const tool = tools.find(t => t.name === name)!;
			const place = (ranking: Variant) => {
				const answer = answers.get(JSON.stringify([ranking, question]))!;
				const at = answer.findIndex(r => r.tool.name === name);
				return at < 0 ? `${ranking} —` : `${ranking} #${at + 1} ${round(answer[at].score)}`;
			};
			const mode = variant === "lexical" ? "lexical" : "hybrid";
			const lexical = index.explainLexical(question, tool.id, mode)!;
			const parts = lexical.parts
				.map(p => `${p.query}${p.term === p.query ? "" : `→${p.term}`} ${p.field} ${round(p.score, 2)}`)
				.join(", ");
			const cosine = cosines(question).find(c => c.tool === tool)!.score;
			return (
				`${name}: ${["lexical", "semantic", "hybrid"].map(v => place(v as Variant)).join(", ")}; ` +
				`cosine ${round(cosine)}; lexical ${round(lexical.score, 2)} = ` +
				`(${parts || "no match"})` +
				(mode === "lexical" ? ` × ${lexical.matched} terms matched` : `, ${lexical.matched} terms matched`)
			);
		};
		/** The misses of a set's own metric (first place, or the first five), explained. */
		const explainMisses = (r: Relevance, variant: Variant, places: number) =>
			r.misses
				.filter(m => {
					const at = answers
						.get(JSON.stringify([variant, m.query]))!
						.findIndex(a => a.tool.name === m.expected);
					return at < 0 || at >= places;
				})
				.map(
					m =>
						`  MISS "${m.query}" (${variant}; terms ${tokenize(m.query).map(processTerm).filter(Boolean).join(" ")})\n` +
						`    expected ${account(m.query, m.expected, variant)}\n` +
						(m.got[0] ? `    first    ${account(m.query, m.got[0], variant)}` : "    nothing found")
				);

		const rows: Result[] = [];
		const table: string[] = ["set | ranking | recall@1 | recall@5 | MRR"];
		for (const set of SETS) {
			const measured = new Map<Variant, Relevance>();
			for (const variant of VARIANTS) measured.set(variant, await relevance(set.queries, rank(variant)));
			const lexical = measured.get("lexical")!;
			const metric = set.goal?.metric ?? (set.name.startsWith("everyday") ? "recall5" : "recall1");
			const label = metric === "recall1" ? "recall@1" : "recall@5";
			for (const variant of VARIANTS) {
				const r = measured.get(variant)!;
				table.push(`${set.name} | ${variant} | ${r.recall1} | ${r.recall5} | ${r.mrr}`);
				const goal =
					set.goal && variant === "hybrid"
						? `; goal ${label} ≥ ${set.goal.min}: ${r[set.goal.metric] >= set.goal.min ? "met" : "NOT met"}`
						: "";
				rows.push({
					scenario: SCENARIO,
					metric: `${set.name} (${r.queries}), ${variant}: ${label}`,
					value: r[metric],
					unit: "",
					baseline: "lexical, same questions",
					baseline_value: lexical[metric],
					ratio: lexical[metric] ? round(r[metric] / lexical[metric], 2) : null,
					notes: `recall@1 ${r.recall1}, recall@5 ${r.recall5}, MRR ${r.mrr}${goal}`
				});
				// Every miss of what the service serves; of lexical ranking too where the goal is the first place.
				const explained =
					variant === "hybrid" || (variant === "lexical" && metric === "recall1")
						? explainMisses(r, variant, metric === "recall1" ? 1 : 5)
						: [];
				if (explained.length) progress(`${set.name}, ${variant}, ${label} misses:\n${explained.join("\n")}`);
			}
		}
		progress(`relevance on ${tools.length} tools:\n${table.join("\n")}`);
		const dimensions = toolVectors[0].length;
		rows.push(
			{
				scenario: SCENARIO,
				metric: "memory per tool vector, int8 (as stored and served)",
				value: dimensions + 4,
				unit: "B",
				baseline: "Float32",
				baseline_value: dimensions * 4,
				ratio: round((dimensions + 4) / (dimensions * 4), 2),
				notes: `${dimensions} dimensions + a Float32 scale; recall cost: compare the "semantic" and "semantic float32" rows`
			},
			{
				scenario: SCENARIO,
				metric: "query embedding p50 latency, one query at a time (local model, worker thread)",
				value: round(percentile(sorted, 50), 2),
				unit: "ms",
				baseline: `all ${questions.length} questions in one batch, per question`,
				baseline_value: round(batchMs / questions.length, 2),
				ratio: round(percentile(sorted, 50) / (batchMs / questions.length), 2),
				notes: `p99 ${round(percentile(sorted, 99), 2)} ms over ${sorted.length} queries; the service caches query vectors (LRU) and batches queries that arrive together`
			}
		);
		return rows;
	} finally {
		await embedder.close();
	}
}

if (require.main === module) runScenario(SCENARIO, run);
