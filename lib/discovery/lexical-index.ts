import { LRUCache } from "lru-cache";
import type SearchableMapOf from "minisearch/dist/es/SearchableMap";
import { TopK } from "./top-k";

// The radix tree MiniSearch uses for prefix and fuzzy lookups of terms (the package exports it).
const SearchableMap: typeof SearchableMapOf = require("minisearch/SearchableMap");

export interface LexicalField<D> {
	/** How `explain` names the field. */
	name: string;
	boost: number;
	text: (doc: D) => string;
}

export interface LexicalOptions<D> {
	fields: LexicalField<D>[];
	tokenize: (text: string) => string[];
	/** The term indexed or searched for a token, or null to drop it. */
	processTerm: (token: string) => string | null;
}

/** How one document's score for a query came about (`LexicalIndex.explain`). */
export interface LexicalExplanation {
	/** As `search` gives it: the sum of the parts, times `matched` when coordinated. */
	score: number;
	/** Query terms that matched in any field. */
	matched: number;
	/** One per query term, indexed term it matched (itself, an extension or a near spelling) and field. */
	parts: { query: string; term: string; field: string; score: number }[];
}

/**
 * Whether a document's sum is multiplied by the number of query terms it matched (MiniSearch's
 * coordination, served in lexical mode) or left as BM25's plain sum (what hybrid ranking fuses: there
 * the model already rewards covering the question, and the multiplier let a tool that matched one
 * more word weakly beat the tool the question named).
 */
export type Coordination = "coordinated" | "plain";

/** MiniSearch's defaults, so that scores and order are those MiniSearch gave (see `search`). */
const BM25 = { k: 1.2, b: 0.7, d: 0.5 };
const PREFIX_WEIGHT = 0.375;
const FUZZY_WEIGHT = 0.45;
/** Fuzzy matches allow round(length × FUZZY) edits (0.2: one edit from 3 letters, two from 8). */
const FUZZY = 0.2;
const MAX_FUZZY = 6;
/** A posting is slot × TF_RANGE + term frequency (capped: BM25 barely moves past a few). */
const TF_RANGE = 1024;
/**
 * Query terms whose expansions are remembered (questions reuse their words, with new ones between),
 * and the (term, weight) pairs they may hold in all: a short term can extend to thousands of terms.
 */
const EXPANSIONS_CACHED = { max: 256, maxSize: 8192 };
/** Slots must stay below this for a posting to be a small integer. */
export const MAX_SLOTS = 2 ** 21;

/** BM25+ of one term in one field of one document, without the field's boost. */
function bm25(idf: number, tf: number, length: number, average: number): number {
	const { k, b, d } = BM25;
	return idf * (d + (tf * (k + 1)) / (tf + k * (1 - b + (b * length) / average)));
}

/**
 * BM25 over a few weighted fields of documents kept in numbered slots, with prefix and fuzzy matching
 * of query terms: the scoring of MiniSearch (BM25+ per field, prefix matches weighted by 0.375 and
 * fuzzy ones by 0.45, decreasing with the distance; a document's sum multiplied by the number of query
 * terms it matched), computed term at a time into typed arrays. MiniSearch builds a result object per
 * matching document and sorts them all: a query whose words occur in every tool did that 10,000 times
 * at 10,000 tools. Here each posting is one small integer in an array per term and field, scores
 * accumulate in Float64Arrays, and a partial top-k keeps the best; documents are checked by `accept`
 * only when they would enter it.
 */
export class LexicalIndex<D> {
	private readonly vocabulary = new SearchableMap<number>();
	/**
	 * What `expand` found for recent query terms, until the vocabulary changes (a term added or gone):
	 * walking the term tree for near spellings took a ninth of a never-asked query at 10,000 tools.
	 */
	private readonly expansions = new LRUCache<string, [number, number][]>({
		...EXPANSIONS_CACHED,
		sizeCalculation: pairs => pairs.length + 1
	});
	private readonly terms: string[] = [];
	private readonly freeTerms: number[] = [];
	/** Postings of term t in field f at t × fields + f, in the order documents were added. */
	private readonly postings: (number[] | undefined)[] = [];
	/** Unique tokens of each slot's fields (MiniSearch's field length), at slot × fields + f. */
	private lengths = new Int32Array(0);
	private readonly totalLength: number[];
	/** Postings each slot added: `remove` checks that it found them all. */
	private postingCount = new Int32Array(0);
	private documents = 0;
	// Per-query scratch, by slot; a stamp tells whether a slot's value belongs to the current query.
	private total = new Float64Array(0);
	private part = new Float64Array(0);
	private matched = new Int32Array(0);
	private queryStamp = new Int32Array(0);
	private termStamp = new Int32Array(0);
	private touched = new Int32Array(0);
	private termTouched = new Int32Array(0);
	private stamp = 0;

	constructor(private readonly options: LexicalOptions<D>) {
		this.totalLength = options.fields.map(() => 0);
	}

	add(slot: number, doc: D): void {
		if (slot >= MAX_SLOTS) throw new Error(`a lexical index holds at most ${MAX_SLOTS} documents`);
		this.ensure(slot + 1);
		const fields = this.options.fields.length;
		this.documents++;
		this.postingCount[slot] = 0;
		this.fieldTerms(doc).forEach(({ frequencies, length }, field) => {
			this.lengths[slot * fields + field] = length;
			this.totalLength[field] += length;
			this.postingCount[slot] += frequencies.size;
			for (const [term, tf] of frequencies) {
				let id = this.vocabulary.get(term);
				if (id === undefined) {
					id = this.freeTerms.pop() ?? this.terms.length;
					this.terms[id] = term;
					this.vocabulary.set(term, id);
					this.vocabularyChanged();
				}
				const key = id * fields + field;
				(this.postings[key] ??= []).push(slot * TF_RANGE + Math.min(tf, TF_RANGE - 1));
			}
		});
	}

	/**
	 * Takes a slot's document out. `doc` is the one added there, whose terms say which postings to
	 * remove; should it have changed since, every posting list is swept for the slot.
	 */
	remove(slot: number, doc: D): void {
		const fields = this.options.fields.length;
		this.documents--;
		let removed = 0;
		this.fieldTerms(doc).forEach(({ frequencies }, field) => {
			for (const [term, tf] of frequencies) {
				const id = this.vocabulary.get(term);
				const list = id === undefined ? undefined : this.postings[id * fields + field];
				const at = list?.indexOf(slot * TF_RANGE + Math.min(tf, TF_RANGE - 1)) ?? -1;
				if (at < 0) continue;
				list!.splice(at, 1);
				removed++;
				if (!list!.length) this.dropList(id! * fields + field);
			}
		});
		if (removed !== this.postingCount[slot])
			this.postings.forEach((list, key) => {
				const at = list?.findIndex(posting => ((posting / TF_RANGE) | 0) === slot) ?? -1;
				if (at >= 0) list!.splice(at, 1);
				if (list && !list.length) this.dropList(key);
			});
		for (let field = 0; field < fields; field++) {
			this.totalLength[field] -= this.lengths[slot * fields + field];
			this.lengths[slot * fields + field] = 0;
		}
		this.postingCount[slot] = 0;
	}

	/** Forgets an emptied posting list, and its term once no field has postings left. */
	private dropList(key: number): void {
		const fields = this.options.fields.length;
		this.postings[key] = undefined;
		const id = Math.floor(key / fields);
		for (let field = 0; field < fields; field++) if (this.postings[id * fields + field]) return;
		this.vocabulary.delete(this.terms[id]);
		this.freeTerms.push(id);
		this.vocabularyChanged();
	}

	/**
	 * The `k` best documents for `text` that `accept` admits, best first; equal scores in the order
	 * MiniSearch gives them (the document first met in the postings first).
	 */
	search(
		text: string,
		k: number,
		accept: (slot: number) => boolean,
		coordination: Coordination = "coordinated"
	): { slot: number; score: number }[] {
		const queryTerms = this.queryTerms(text);
		if (!queryTerms.size || !this.documents || k <= 0) return [];
		const query = this.nextStamp();
		let touched = 0;
		for (const [term, repeats] of queryTerms) {
			const current = this.nextStamp();
			let termTouched = 0;
			for (const [id, weight] of this.expand(term)) {
				this.options.fields.forEach(({ boost }, field) => {
					const list = this.postings[id * this.options.fields.length + field];
					if (!list) return;
					termTouched = this.score(list, field, weight * boost, current, termTouched);
				});
			}
			for (let i = 0; i < termTouched; i++) {
				const slot = this.termTouched[i];
				// A term asked twice counts twice, as MiniSearch adds each occurrence's scores.
				const part = repeats === 1 ? this.part[slot] : this.part[slot] * repeats;
				if (this.queryStamp[slot] !== query) {
					this.queryStamp[slot] = query;
					this.total[slot] = part;
					this.matched[slot] = 1;
					this.touched[touched++] = slot;
				} else {
					this.total[slot] += part;
					this.matched[slot]++;
				}
			}
		}
		const best = new TopK(k);
		const coordinated = coordination === "coordinated";
		for (let i = 0; i < touched; i++) {
			const slot = this.touched[i];
			const score = coordinated ? this.total[slot] * this.matched[slot] : this.total[slot];
			if (score >= best.worst && best.admits(score, i) && accept(slot)) best.push(slot, score, i);
		}
		return best.sorted();
	}

	/**
	 * Adds one (term, field) posting list's BM25 to the current term's part of each document's score,
	 * each product in MiniSearch's order (weight × boost × (idf × tf part)).
	 */
	private score(list: number[], field: number, factor: number, current: number, termTouched: number): number {
		const fields = this.options.fields.length;
		const average = this.totalLength[field] / this.documents;
		const idf = this.idf(list.length);
		for (let i = 0; i < list.length; i++) {
			const posting = list[i];
			const slot = (posting / TF_RANGE) | 0;
			const tf = posting - slot * TF_RANGE;
			const value = factor * bm25(idf, tf, this.lengths[slot * fields + field], average);
			if (this.termStamp[slot] !== current) {
				this.termStamp[slot] = current;
				this.part[slot] = value;
				this.termTouched[termTouched++] = slot;
			} else this.part[slot] += value;
		}
		return termTouched;
	}

	/**
	 * How `search` scored `slot` for `text`, part by part: for reading a ranking (the quality
	 * benchmark prints it for each miss). Scans the posting lists of every matched term.
	 */
	explain(text: string, slot: number, coordination: Coordination = "coordinated"): LexicalExplanation {
		const fields = this.options.fields;
		const parts: LexicalExplanation["parts"] = [];
		let sum = 0;
		let matched = 0;
		for (const [query, repeats] of this.queryTerms(text)) {
			const before = parts.length;
			for (const [id, weight] of this.expand(query))
				fields.forEach(({ name, boost }, field) => {
					const list = this.postings[id * fields.length + field];
					const posting = list?.find(p => ((p / TF_RANGE) | 0) === slot);
					if (posting === undefined) return;
					const average = this.totalLength[field] / this.documents;
					const tf = posting - slot * TF_RANGE;
					const length = this.lengths[slot * fields.length + field];
					const score = repeats * weight * boost * bm25(this.idf(list!.length), tf, length, average);
					parts.push({ query, term: this.terms[id], field: name, score });
					sum += score;
				});
			if (parts.length > before) matched++;
		}
		return { score: coordination === "coordinated" ? sum * matched : sum, matched, parts };
	}

	/** The processed terms of a query, each with how often it was asked. */
	private queryTerms(text: string): Map<string, number> {
		const terms = new Map<string, number>();
		for (const token of this.options.tokenize(text)) {
			const term = this.options.processTerm(token);
			if (term) terms.set(term, (terms.get(term) ?? 0) + 1);
		}
		return terms;
	}

	private idf(matching: number): number {
		return Math.log(1 + (this.documents - matching + 0.5) / (matching + 0.5));
	}

	private vocabularyChanged(): void {
		if (this.expansions.size) this.expansions.clear();
	}

	/** The indexed terms a query term matches (term id, weight): itself, its extensions, near spellings. */
	private expand(term: string): [number, number][] {
		let found = this.expansions.get(term);
		if (!found) this.expansions.set(term, (found = [...this.expandInVocabulary(term)]));
		return found;
	}

	private *expandInVocabulary(term: string): Generator<[number, number]> {
		const exact = this.vocabulary.get(term);
		if (exact !== undefined) yield [exact, 1];
		for (const [found, id] of this.vocabulary.atPrefix(term)) {
			const distance = found.length - term.length;
			if (distance) yield [id, (PREFIX_WEIGHT * found.length) / (found.length + 0.3 * distance)];
		}
		const edits = Math.min(MAX_FUZZY, Math.round(term.length * FUZZY));
		if (!edits) return;
		for (const [found, [id, distance]] of this.vocabulary.fuzzyGet(term, edits)) {
			// A prefix match counts as one; the exact term was counted first.
			if (distance && !found.startsWith(term))
				yield [id, (FUZZY_WEIGHT * found.length) / (found.length + distance)];
		}
	}

	/** Per field: how often each term occurs, and the number of unique tokens (MiniSearch's length). */
	private fieldTerms(doc: D): { frequencies: Map<string, number>; length: number }[] {
		return this.options.fields.map(({ text }) => {
			const tokens = this.options.tokenize(text(doc));
			const frequencies = new Map<string, number>();
			for (const token of tokens) {
				const term = this.options.processTerm(token);
				if (term) frequencies.set(term, (frequencies.get(term) ?? 0) + 1);
			}
			return { frequencies, length: new Set(tokens).size };
		});
	}

	private nextStamp(): number {
		if (this.stamp >= 2 ** 31 - 2) {
			this.queryStamp.fill(0);
			this.termStamp.fill(0);
			this.stamp = 0;
		}
		return ++this.stamp;
	}

	/** Grows the per-slot arrays to hold `slots` slots. */
	private ensure(slots: number): void {
		if (slots <= this.total.length) return;
		const capacity = Math.max(slots, this.total.length * 2, 64);
		const grown = <A extends Int32Array | Float64Array>(old: A, size: number): A => {
			const next = new (old.constructor as new (n: number) => A)(size);
			next.set(old);
			return next;
		};
		this.lengths = grown(this.lengths, capacity * this.options.fields.length);
		this.postingCount = grown(this.postingCount, capacity);
		this.total = grown(this.total, capacity);
		this.part = grown(this.part, capacity);
		this.matched = grown(this.matched, capacity);
		this.queryStamp = grown(this.queryStamp, capacity);
		this.termStamp = grown(this.termStamp, capacity);
		this.touched = grown(this.touched, capacity);
		this.termTouched = grown(this.termTouched, capacity);
	}
}
