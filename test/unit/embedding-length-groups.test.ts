import { lengthGroups } from "../../lib/discovery/embedders/length-groups";

/** What the model is charged for `groups`: a call each, and every text padded to its call's longest. */
const cost = (lengths: number[], groups: number[][], callCost: number) =>
	groups.reduce((sum, group) => sum + callCost + group.length * Math.max(...group.map(i => lengths[i])), 0);

/** Every way to cut the texts sorted by length into runs: the least cost among them. */
function cheapestByBruteForce(lengths: number[], callCost: number): number {
	const sorted = [...lengths].sort((a, b) => a - b);
	let cheapest = Infinity;
	for (let cuts = 0; cuts < 2 ** (sorted.length - 1); cuts++) {
		let total = 0;
		let start = 0;
		for (let i = 1; i <= sorted.length; i++)
			if (i === sorted.length || cuts & (1 << (i - 1))) {
				total += callCost + (i - start) * sorted[i - 1];
				start = i;
			}
		cheapest = Math.min(cheapest, total);
	}
	return cheapest;
}

describe("lengthGroups", () => {
	it("sends texts of one length in one call", () => {
		expect(lengthGroups([5, 5, 5, 5])).toEqual([[0, 1, 2, 3]]);
	});

	it("splits a long text off short ones when the padding it saves is worth more than a call", () => {
		// Together: 13 + 16 × 16 = 269; apart: 13 + 15 × 4 + 13 + 16 = 102.
		const lengths = [...Array(15).fill(4), 16];
		expect(lengthGroups(lengths)).toEqual([Array.from({ length: 15 }, (_, i) => i), [15]]);
	});

	it("keeps texts together when a call costs more than their padding", () => {
		// Apart: 13 + 4 + 13 + 5 = 35; together: 13 + 2 × 5 = 23.
		expect(lengthGroups([5, 4])).toEqual([[1, 0]]);
	});

	it("answers every text exactly once, shortest first", () => {
		const lengths = [9, 3, 12, 3, 7, 20, 4, 9, 6, 3];
		const groups = lengthGroups(lengths, 6);
		const flat = groups.flat();
		expect([...flat].sort((a, b) => a - b)).toEqual(lengths.map((_, i) => i));
		expect(flat.map(i => lengths[i])).toEqual([...lengths].sort((a, b) => a - b));
	});

	it("costs what the cheapest cut into runs of similar length costs", () => {
		let seed = 7;
		const next = () => (seed = (seed * 16807) % 2147483647) / 2147483647;
		for (let round = 0; round < 50; round++) {
			const lengths = Array.from({ length: 1 + Math.floor(next() * 12) }, () => 1 + Math.floor(next() * 30));
			const callCost = 1 + Math.floor(next() * 20);
			const groups = lengthGroups(lengths, callCost);
			expect(cost(lengths, groups, callCost)).toBe(cheapestByBruteForce(lengths, callCost));
		}
	});

	it("answers no group for no text", () => {
		expect(lengthGroups([])).toEqual([]);
	});
});
