import { LexicalIndex } from "../../lib/discovery/lexical-index";
import { TOOL_FIELDS } from "../../lib/discovery/tenant-index";
import { processTerm, tokenize } from "../../lib/discovery/text";
import { TopK } from "../../lib/discovery/top-k";
import { BUILTIN_TOOLS } from "../../lib/builtin-tools";
import type { StoredTool } from "../../types/wire";
import { CORPUS_QUERIES, EVERYDAY_QUERIES, TOOL_CORPUS } from "../fixtures/tool-corpus";
import { miniSearchReference as miniSearch } from "../support/minisearch-reference";

const tools = [...TOOL_CORPUS, ...BUILTIN_TOOLS].map(
	(definition, i) =>
		({
			id: `tool-${i}`,
			name: definition.name,
			description: definition.description ?? "",
			parameters: definition.parameters ?? {},
			metadata: definition.metadata ?? {}
		}) as unknown as StoredTool
);

const lexicalIndex = () => new LexicalIndex<StoredTool>({ fields: TOOL_FIELDS, tokenize, processTerm });

const QUERIES = [
	...CORPUS_QUERIES.map(q => q.query),
	...EVERYDAY_QUERIES.map(q => q.query),
	"weather weather forecast",
	"weath",
	"curency convrt",
	"the a of",
	"send email"
];

describe("LexicalIndex", () => {
	it("ranks and scores as MiniSearch did, ties included", () => {
		const expected = miniSearch(tools);
		const index = lexicalIndex();
		tools.forEach((tool, slot) => index.add(slot, tool));
		for (const query of QUERIES) {
			const theirs = expected.search(query).map(r => [r.id, r.score]);
			const ours = index.search(query, 1000, () => true).map(r => [tools[r.slot].id, r.score]);
			expect([query, ours.map(([id]) => id)]).toEqual([query, theirs.map(([id]) => id)]);
			ours.forEach(([, score], i) => expect(score).toBeCloseTo(theirs[i][1] as number, 9));
		}
	});

	it("after removals and re-additions, ranks as an index built from the remaining tools", () => {
		const index = lexicalIndex();
		tools.forEach((tool, slot) => index.add(slot, tool));
		// Asked before the changes: what the index remembers of the queries' terms must not outlive them.
		for (const query of QUERIES) index.search(query, 1000, () => true);
		const removed = new Set([0, 3, 7, 20, 21, 40]);
		for (const slot of removed) index.remove(slot, tools[slot]);
		// A slot freed and filled again: the new tool takes the removed one's place.
		const replacement = { ...tools[1], id: "tool-new", name: "weather_alerts" } as StoredTool;
		index.add(0, replacement);
		const remaining = [...tools.filter((_, slot) => !removed.has(slot) && slot !== 1), tools[1], replacement];
		const expected = miniSearch(remaining);
		const bySlot = (slot: number) => (slot === 0 ? replacement : tools[slot]);
		for (const query of QUERIES) {
			const theirs = expected.search(query).map(r => r.score);
			const ours = index.search(query, 1000, () => true);
			expect(ours.map(r => r.score).map(s => Math.round(s * 1e6))).toEqual(
				theirs.map(s => Math.round(s * 1e6))
			);
			expect(ours.every(r => !removed.has(r.slot) || r.slot === 0)).toBe(true);
			if (query === "weather alerts") expect(bySlot(ours[0].slot).id).toBe("tool-new");
		}
	});

	it("finds a word, its extensions and near spellings added after it was first asked for", () => {
		const index = lexicalIndex();
		tools.forEach((tool, slot) => index.add(slot, tool));
		const found = (query: string) => index.search(query, 10, () => true).map(r => r.slot);
		expect(found("zebrafish")).toEqual([]);
		expect(found("zebra")).toEqual([]);
		const slot = tools.length;
		const zebrafish = {
			...tools[0],
			id: "new",
			name: "zebrafish_tracker",
			description: "Tracks zebrafish"
		} as StoredTool;
		index.add(slot, zebrafish);
		expect(found("zebrafish")).toEqual([slot]);
		// An extension (prefix) and a near spelling of the new word.
		expect(found("zebra")).toEqual([slot]);
		expect(found("zebrafsh")).toEqual([slot]);
		index.remove(slot, zebrafish);
		expect(found("zebrafish")).toEqual([]);
	});

	it("removes every posting of a slot even when its document changed after it was added", () => {
		const index = lexicalIndex();
		tools.forEach((tool, slot) => index.add(slot, tool));
		index.remove(0, { ...tools[0], name: "other", description: "Something else entirely" } as StoredTool);
		const replacement = { ...tools[0], id: "x", name: "zzz_unrelated", description: "Nothing" } as StoredTool;
		index.add(0, replacement);
		const fresh = miniSearch([...tools.slice(1), replacement]);
		for (const query of ["weather current temperature", "zzz", "nothing"]) {
			const ours = index.search(query, 1000, () => true);
			const theirs = fresh.search(query);
			expect(ours.map(r => Math.round(r.score * 1e6))).toEqual(theirs.map(r => Math.round(r.score * 1e6)));
			expect(ours.filter(r => r.slot === 0).length).toBe(theirs.filter(r => r.id === "x").length);
		}
	});

	it("explains each score part by part, as search computed it", () => {
		const index = lexicalIndex();
		tools.forEach((tool, slot) => index.add(slot, tool));
		for (const query of QUERIES) {
			for (const { slot, score } of index.search(query, 1000, () => true)) {
				const explained = index.explain(query, slot);
				expect(explained.score).toBeCloseTo(score, 9);
				expect(new Set(explained.parts.map(part => part.query)).size).toBe(explained.matched);
			}
			// Plain: BM25's sum of the parts, not multiplied by the terms matched.
			for (const { slot, score } of index.search(query, 1000, () => true, "plain")) {
				const explained = index.explain(query, slot, "plain");
				expect(explained.score).toBeCloseTo(score, 9);
				expect(score).toBeCloseTo(
					explained.parts.reduce((sum, part) => sum + part.score, 0),
					9
				);
				expect(score * explained.matched).toBeCloseTo(index.explain(query, slot).score, 9);
			}
		}
		const weather = index.explain(
			"weath forecasts",
			tools.findIndex(tool => tool.name === "weather_forecast")
		);
		expect(weather.parts).toContainEqual(
			expect.objectContaining({ query: "weath", term: "weather", field: "name" })
		);
		expect(weather.parts).toContainEqual(
			expect.objectContaining({ query: "forecast", term: "forecast", field: "tags" })
		);
		expect(
			index.explain(
				"weath",
				tools.findIndex(tool => tool.name === "calculator")
			)
		).toEqual({
			score: 0,
			matched: 0,
			parts: []
		});
	});

	it("keeps the k best that `accept` admits, asking only about those that would enter", () => {
		const index = lexicalIndex();
		tools.forEach((tool, slot) => index.add(slot, tool));
		const all = index.search("search", 1000, () => true);
		expect(all.length).toBeGreaterThan(5);
		const asked: number[] = [];
		const best = index.search("search", 2, slot => {
			asked.push(slot);
			return slot !== all[0].slot;
		});
		expect(best).toEqual([all[1], all[2]]);
		expect(asked.length).toBeLessThan(all.length);
		expect(index.search("", 5, () => true)).toEqual([]);
		expect(index.search("the of", 5, () => true)).toEqual([]);
	});
});

describe("TopK", () => {
	it("keeps the k best, ties in the given order, as a stable sort of the whole stream would", () => {
		const scores = Array.from({ length: 500 }, (_, i) => Math.round(Math.sin(i * 7.1) * 20) / 4);
		for (const k of [0, 1, 5, 37, 500, 800]) {
			const top = new TopK(k);
			scores.forEach((score, slot) => top.push(slot, score, slot));
			const expected = scores
				.map((score, slot) => ({ slot, score }))
				.sort((a, b) => b.score - a.score)
				.slice(0, k);
			expect(top.sorted()).toEqual(expected);
		}
	});
});
