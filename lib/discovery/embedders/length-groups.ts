/**
 * A model call's fixed cost in units of one text-token, for Universal Sentence Encoder lite on the
 * tfjs WebAssembly backend: a call costs 4.5–6 ms of CPU (the graph executor's JavaScript, per
 * operation) plus about 0.43 ms per text per token of the call's longest text (measured with texts of
 * 3 to 16 tokens in batches of 1 to 32; docs/discovery.md, Speed).
 */
export const CALL_COST_IN_TOKENS = 13;

/**
 * Splits a batch into the model calls that cost least. The model pads every text of a call to the
 * call's longest, so one long text in a batch of short ones makes each of them cost as much as it:
 * texts of similar length go together, and a group is split off where the padding it saves is worth
 * more than a call. Answers groups of indices into `lengths` (token counts), shortest texts first;
 * each index appears once. Optimal for the cost `callCost + texts × longest` per call (a partition of
 * the texts sorted by length into runs, by dynamic programming: at most 32 texts, so O(n²) is nothing).
 */
export function lengthGroups(lengths: readonly number[], callCost = CALL_COST_IN_TOKENS): number[][] {
	const order = lengths.map((_, i) => i).sort((a, b) => lengths[a] - lengths[b]);
	const n = order.length;
	// best[j]: least cost of the first j texts (sorted); start[j]: where the last group of that begins.
	const best = new Float64Array(n + 1);
	const start = new Int32Array(n + 1);
	for (let j = 1; j <= n; j++) {
		best[j] = Infinity;
		const longest = lengths[order[j - 1]];
		for (let i = 0; i < j; i++) {
			const cost = best[i] + callCost + (j - i) * longest;
			if (cost < best[j]) {
				best[j] = cost;
				start[j] = i;
			}
		}
	}
	const groups: number[][] = [];
	for (let j = n; j > 0; j = start[j]) groups.unshift(order.slice(start[j], j));
	return groups;
}
