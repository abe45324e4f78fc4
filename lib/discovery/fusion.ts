/** One ranking's candidates, best first. */
export interface Ranked {
	id: string;
	score: number;
}

export interface Fused {
	id: string;
	score: number;
	match: "lexical" | "semantic" | "both";
}

/** The usual constant of reciprocal rank fusion: a lower one lets the first places of one list dominate. */
export const RRF_K = 60;

/**
 * Reciprocal rank fusion: each list gives a candidate 1 / (k + rank). Needs no calibration of BM25
 * against cosine, and a candidate found by both rankings comes before one found by either alone.
 */
export function reciprocalRankFusion(lexical: Ranked[], semantic: Ranked[], k = RRF_K): Fused[] {
	const fused = new Map<string, Fused>();
	lexical.forEach(({ id }, rank) => fused.set(id, { id, score: 1 / (k + rank + 1), match: "lexical" }));
	semantic.forEach(({ id }, rank) => {
		const score = 1 / (k + rank + 1);
		const seen = fused.get(id);
		if (seen) {
			seen.score += score;
			seen.match = "both";
		} else fused.set(id, { id, score, match: "semantic" });
	});
	return [...fused.values()].sort((a, b) => b.score - a.score);
}

/**
 * Weighted sum of calibrated scores: BM25 divided by the query's best BM25, cosine rescaled from
 * [floor, best cosine of the query] to [0, 1]; `weight` is the lexical share. Each ranking's evidence
 * counts in proportion to how strong it is, where RRF gives a weak first place as much as a strong one.
 */
export function weightedFusion(
	lexical: Ranked[],
	semantic: Ranked[],
	weight: number,
	floor: number
): Fused[] {
	const fused = new Map<string, Fused>();
	const bestLexical = lexical[0]?.score || 1;
	const semanticRange = (semantic[0]?.score ?? 1) - floor || 1;
	for (const { id, score } of lexical)
		fused.set(id, { id, score: (weight * score) / bestLexical, match: "lexical" });
	for (const { id, score } of semantic) {
		const part = ((1 - weight) * (score - floor)) / semanticRange;
		const seen = fused.get(id);
		if (seen) {
			seen.score += part;
			seen.match = "both";
		} else fused.set(id, { id, score: part, match: "semantic" });
	}
	return [...fused.values()].sort((a, b) => b.score - a.score);
}
