import { LRUCache } from "lru-cache";
import type { StoredTool } from "../../types/wire";
import { ANY_AGENT, GLOBAL_TENANT } from "../tenancy";
import { reciprocalRankFusion, weightedFusion, type Fused, type Ranked } from "./fusion";
import { LexicalIndex, type Coordination, type LexicalExplanation, type LexicalField } from "./lexical-index";
import { parameterText, processTerm, tagsOf, tokenize } from "./text";
import { VectorMatrix } from "./vector-matrix";
import type { QuantizedVector } from "./vectors";

export type DiscoverMode = "hybrid" | "lexical" | "semantic";
export type Match = Fused["match"];

export interface DiscoverQuery {
	query?: string;
	types?: string[];
	tags?: string[];
	limit: number;
	offset?: number;
	/** Leaves out tools whose upstream did not answer their last probe. */
	healthyOnly?: boolean;
	agentId: string | null;
	mode?: DiscoverMode;
	/** The query's vector; null ranks lexically (embeddings off, unavailable or still loading). */
	vector?: Float32Array | null;
	/** How hybrid fuses: `weighted` (served) or `rrf` (measured against it by the quality benchmark). */
	fusion?: "weighted" | "rrf";
}

export interface RankedTool {
	tool: StoredTool;
	score: number;
	/** Which ranking found it; absent when there was no query. */
	match?: Match;
}

/**
 * Below this cosine a tool is not a semantic match at all: without a floor every tool would be
 * "found" by meaning. The encoder gives most unrelated pairs of the relevance corpus less.
 */
export const MIN_COSINE = 0.2;

/**
 * Lexical mode multiplies a tool's BM25 by the number of query words it matched (MiniSearch's
 * scoring); hybrid fuses the plain sum, chosen on the relevance benchmark's tuning sets
 * (docs/discovery.md, "Why keyword requests miss").
 */
const coordinationOf = (mode: DiscoverMode): Coordination => (mode === "lexical" ? "coordinated" : "plain");
/** Candidates each ranking hands to fusion beyond the requested page. */
const FUSION_DEPTH = 50;
/** Rankings remembered per tenant (until its tools change), and the most places each keeps. */
const CACHED_RANKINGS = 512;
const CACHED_PLACES = 200;
/**
 * Lexical share of weighted fusion, chosen on the relevance corpus's keyword requests and everyday
 * questions (never on their held-out sets); `npm run bench` (quality) compares it with RRF.
 */
const LEXICAL_WEIGHT = 0.4;

/** What lexical ranking reads of a tool, and how much a match in each counts. */
export const TOOL_FIELDS: LexicalField<StoredTool>[] = [
	{ name: "name", boost: 3, text: tool => tool.name },
	{ name: "description", boost: 1, text: tool => tool.description ?? "" },
	{ name: "tags", boost: 2, text: tool => tagsOf(tool).join(" ") },
	{ name: "parameters", boost: 0.25, text: parameterText }
];

/** The order of tools listed without a query: `localeCompare`'s, with one collator for every comparison. */
const byName = new Intl.Collator().compare;

export const mayUse = (tool: StoredTool, agentId: string | null): boolean =>
	tool.permissions.agents.includes(ANY_AGENT) ||
	(agentId !== null && tool.permissions.agents.includes(agentId));

interface Entry {
	tool: StoredTool;
	/** Where the tool's terms and vector are kept. */
	slot: number;
	/** Upsert order: ties rank the tool indexed earlier first. */
	order: number;
}

/**
 * The tools one tenant can discover (its own plus the global ones), ranked by words (BM25 over name,
 * description, tags and parameters, stemmed, prefix and fuzzy matching: `LexicalIndex`) and by meaning
 * (cosine of sentence embeddings: `VectorMatrix`), fused. Permission, status, type, tag and health
 * filters run inside both rankings, before the limit, so a tool the agent may not use never takes a
 * place in the results.
 */
export class TenantIndex {
	private readonly entries = new Map<string, Entry>();
	/** Entries by slot; freed slots are reused. */
	private readonly slots: (Entry | undefined)[] = [];
	/** Tool ids by slot: a ranking names its hundreds of candidates without reading their entries. */
	private readonly slotIds: string[] = [];
	private readonly freeSlots: number[] = [];
	private upserts = 0;
	/** Tool ids by definition hash: a vector computed for a hash serves each of them. */
	private readonly byHash = new Map<string, Set<string>>();
	/**
	 * Per slot, 1 when the tool is the tenant's own, active and open to every agent: usable by any query
	 * without filters, which ranking then checks without touching the tool (at 10,000 tools, reading
	 * each candidate's object took a third of a lexical ranking's time). Other slots take `usable`.
	 */
	private openToAll = new Uint8Array(64);
	/** Names of the tenant's own tools: a global tool of the same name is shadowed by it. */
	private readonly ownNames = new Map<string, string>();
	/**
	 * Finished rankings by query, mode and filters. Agents repeat their questions, and ranking is the
	 * whole cost of a discovery: any change to the tenant's tools or vectors empties it.
	 */
	private readonly rankings = new LRUCache<string, Fused[]>({ max: CACHED_RANKINGS });
	/** Every tool by name, for requests without a query; rebuilt after any change. */
	private byName: StoredTool[] | null = null;
	private readonly lexical = new LexicalIndex<StoredTool>({ fields: TOOL_FIELDS, tokenize, processTerm });
	private readonly vectors = new VectorMatrix();

	/** @param needsVector told of every tool whose vector this index does not have */
	constructor(
		readonly tenantId: string,
		private readonly needsVector: (tool: StoredTool) => void = () => undefined
	) {}

	upsert(tool: StoredTool, vector?: QuantizedVector): void {
		this.rankings.clear();
		this.byName = null;
		const previous = this.entries.get(tool.id);
		const known =
			previous?.tool.definition_hash === tool.definition_hash ? this.vectors.get(previous.slot) : undefined;
		if (previous) this.remove(tool.id);
		const slot = this.freeSlots.pop() ?? this.slots.length;
		const entry: Entry = { tool, slot, order: ++this.upserts };
		this.entries.set(tool.id, entry);
		this.slots[slot] = entry;
		this.slotIds[slot] = tool.id;
		this.lexical.add(slot, tool);
		if (slot >= this.openToAll.length) {
			const grown = new Uint8Array(this.openToAll.length * 2);
			grown.set(this.openToAll);
			this.openToAll = grown;
		}
		this.openToAll[slot] =
			tool.tenant_id === this.tenantId && tool.status === "active" && mayUse(tool, null) ? 1 : 0;
		if (vector ?? known) this.vectors.set(slot, (vector ?? known)!);
		if (tool.tenant_id !== GLOBAL_TENANT) this.ownNames.set(tool.name, tool.id);
		let ids = this.byHash.get(tool.definition_hash);
		if (!ids) this.byHash.set(tool.definition_hash, (ids = new Set()));
		ids.add(tool.id);
		if (!vector && !known) this.needsVector(tool);
	}

	remove(id: string): void {
		const entry = this.entries.get(id);
		if (!entry) return;
		const previous = entry.tool;
		this.rankings.clear();
		this.byName = null;
		this.lexical.remove(entry.slot, previous);
		this.vectors.delete(entry.slot);
		this.slots[entry.slot] = undefined;
		this.openToAll[entry.slot] = 0;
		this.freeSlots.push(entry.slot);
		this.entries.delete(id);
		const ids = this.byHash.get(previous.definition_hash);
		ids?.delete(id);
		if (ids?.size === 0) this.byHash.delete(previous.definition_hash);
		if (previous.tenant_id !== GLOBAL_TENANT && this.ownNames.get(previous.name) === id)
			this.ownNames.delete(previous.name);
	}

	/** Gives the tools of one definition hash their vector. */
	attachVector(hash: string, vector: QuantizedVector): void {
		this.rankings.clear();
		for (const id of this.byHash.get(hash) ?? []) this.vectors.set(this.entries.get(id)!.slot, vector);
	}

	/** Tools still waiting for their vector (reported by readiness checks and tests). */
	get pendingVectors(): number {
		let pending = 0;
		for (const entry of this.entries.values()) if (!this.vectors.has(entry.slot)) pending++;
		return pending;
	}

	/**
	 * How the lexical ranking of `mode` scored one tool for `text` (see `LexicalIndex.explain`); null
	 * for an unknown id.
	 */
	explainLexical(text: string, id: string, mode: DiscoverMode = "lexical"): LexicalExplanation | null {
		const entry = this.entries.get(id);
		return entry ? this.lexical.explain(text, entry.slot, coordinationOf(mode)) : null;
	}

	query(q: DiscoverQuery): RankedTool[] {
		const usable = (tool: StoredTool | undefined): tool is StoredTool =>
			tool !== undefined &&
			tool.status === "active" &&
			mayUse(tool, q.agentId) &&
			!(q.healthyOnly && tool.health?.state === "unreachable") &&
			!(
				tool.tenant_id === GLOBAL_TENANT &&
				this.tenantId !== GLOBAL_TENANT &&
				this.ownNames.has(tool.name)
			) &&
			(!q.types?.length || q.types.includes(tool.type)) &&
			(!q.tags?.length || tagsOf(tool).some(tag => q.tags!.includes(tag)));
		const start = q.offset ?? 0;
		const text = q.query?.trim();
		if (!text) {
			// No query: every usable tool, by name, so the order is stable (clients page through it).
			this.byName ??= [...this.entries.values()]
				.map(entry => entry.tool)
				.sort((a, b) => byName(a.name, b.name));
			const page: RankedTool[] = [];
			let skipped = 0;
			for (const tool of this.byName) {
				if (page.length === q.limit) break;
				if (!usable(tool)) continue;
				if (skipped < start) skipped++;
				else page.push({ tool, score: 0 });
			}
			return page;
		}
		const depth = start + q.limit + FUSION_DEPTH;
		const mode = q.vector ? (q.mode ?? "hybrid") : "lexical";
		const key =
			start + q.limit <= CACHED_PLACES
				? JSON.stringify([text, mode, q.fusion, q.agentId, q.types, q.tags, q.healthyOnly])
				: undefined;
		let ranked = key === undefined ? undefined : this.rankings.get(key);
		if (!ranked) {
			ranked = this.rank(text, mode, q, usable, depth);
			if (key !== undefined) this.rankings.set(key, ranked.slice(0, CACHED_PLACES));
		}
		return ranked.slice(start, start + q.limit).map(({ id, score, match }) => ({
			tool: this.entries.get(id)!.tool,
			score: Math.round(score * 10000) / 10000,
			match
		}));
	}

	private rank(
		text: string,
		mode: DiscoverMode,
		q: DiscoverQuery,
		usable: (tool: StoredTool | undefined) => tool is StoredTool,
		depth: number
	): Fused[] {
		const unfiltered = !q.healthyOnly && !q.types?.length && !q.tags?.length;
		const usableSlot = (slot: number) =>
			(unfiltered && this.openToAll[slot] === 1) || usable(this.slots[slot]?.tool);
		const ranked = (found: { slot: number; score: number }[]): Ranked[] =>
			found.map(({ slot, score }) => ({ id: this.slotIds[slot], score }));
		// Lexical mode keeps every place a remembered ranking may be asked for; fusion needs `depth`.
		const lexical: Ranked[] =
			mode === "semantic"
				? []
				: ranked(
						this.lexical.search(
							text,
							mode === "lexical" ? Math.max(depth, CACHED_PLACES) : depth,
							usableSlot,
							coordinationOf(mode)
						)
					);
		const semantic =
			mode === "lexical"
				? []
				: ranked(
						this.vectors.search(q.vector!, depth, MIN_COSINE, usableSlot, slot => this.slots[slot]!.order)
					);
		return mode === "lexical"
			? lexical.map(({ id, score }) => ({ id, score, match: "lexical" }))
			: mode === "semantic"
				? semantic.map(({ id, score }) => ({ id, score, match: "semantic" }))
				: q.fusion === "rrf"
					? reciprocalRankFusion(lexical, semantic)
					: weightedFusion(lexical, semantic, LEXICAL_WEIGHT, MIN_COSINE);
	}
}
