import type { CorpusQuery } from "../fixtures/tool-corpus";

export interface Relevance {
	queries: number;
	/** Share of queries whose expected tool comes first. */
	recall1: number;
	/** Share of queries whose expected tool is among the first five. */
	recall5: number;
	/** Mean of 1 / rank of the expected tool (0 when it is not in the answer). */
	mrr: number;
	misses: { query: string; expected: string; got: string[] }[];
}

const round = (value: number) => Math.round(value * 1000) / 1000;

/** Runs every query through `rank` (tool names, best first) and scores the answers. */
export async function relevance(
	queries: CorpusQuery[],
	rank: (query: string) => Promise<string[]>
): Promise<Relevance> {
	let first = 0;
	let topFive = 0;
	let reciprocal = 0;
	const misses: Relevance["misses"] = [];
	for (const { query, expected } of queries) {
		const names = await rank(query);
		const position = names.indexOf(expected);
		if (position === 0) first++;
		if (position >= 0 && position < 5) topFive++;
		if (position >= 0) reciprocal += 1 / (position + 1);
		if (position !== 0) misses.push({ query, expected, got: names.slice(0, 3) });
	}
	const n = queries.length;
	return {
		queries: n,
		recall1: round(first / n),
		recall5: round(topFive / n),
		mrr: round(reciprocal / n),
		misses
	};
}

/** One line per miss: what was asked, what was expected, what came first. */
export const describeMisses = (result: Relevance): string =>
	result.misses
		.map(m => `  MISS ${m.query} → expected ${m.expected}, got ${m.got.join(", ") || "(none)"}`)
		.join("\n");
