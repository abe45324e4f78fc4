import MiniSearch from "minisearch";
import type { StoredTool } from "../../types/wire";
import { ANY_AGENT, GLOBAL_TENANT } from "../tenancy";

export interface DiscoverQuery {
	query?: string;
	types?: string[];
	tags?: string[];
	limit: number;
	offset?: number;
	/** Leaves out tools whose upstream did not answer their last probe. */
	healthyOnly?: boolean;
	agentId: string | null;
}

export interface RankedTool {
	tool: StoredTool;
	score: number;
}

/**
 * Words too common to tell tools apart: matched as prefixes they would pull in unrelated tools
 * ("in" → "invoice", "for" → "forecast").
 */
const STOP_WORDS = new Set(
	(
		"a an and are as at be by can do does for from get give how i in into is it its me my of on or " +
		"our please s so some that the their them then there these this to up us we what when where " +
		"which who will with would you your"
	).split(" ")
);

/** Lower-cases a term and drops stop words and single letters (applied to documents and queries). */
const processTerm = (term: string): string | null => {
	const word = term.toLowerCase();
	return word.length < 2 || STOP_WORDS.has(word) ? null : word;
};

/** Splits `weatherLookup`, `weather_lookup` and `weather-lookup` alike into words. */
const tokenize = (text: string): string[] =>
	text
		.replace(/([a-z0-9])([A-Z])/g, "$1 $2")
		.split(/[\s\p{P}\p{S}]+/u)
		.filter(Boolean);

const tagsOf = (tool: StoredTool): string[] =>
	Array.isArray(tool.metadata.tags)
		? (tool.metadata.tags as unknown[]).filter((t): t is string => typeof t === "string")
		: [];

export const mayUse = (tool: StoredTool, agentId: string | null): boolean =>
	tool.permissions.agents.includes(ANY_AGENT) ||
	(agentId !== null && tool.permissions.agents.includes(agentId));

/**
 * The tools one tenant can discover (its own plus the global ones) in a BM25 index (MiniSearch).
 * Permission, status, type and tag filters run inside the search, before ranking and the limit,
 * so a tool the agent may not use never takes a place in the results.
 */
export class TenantIndex {
	private readonly tools = new Map<string, StoredTool>();
	/** Names of the tenant's own tools: a global tool of the same name is shadowed by it. */
	private readonly ownNames = new Map<string, string>();
	private readonly search = new MiniSearch<StoredTool>({
		fields: ["name", "description", "tags"],
		extractField: (tool, field) =>
			field === "tags" ? tagsOf(tool).join(" ") : String((tool as never)[field] ?? ""),
		tokenize,
		processTerm,
		searchOptions: { boost: { name: 3, tags: 2 }, prefix: true, fuzzy: 0.2, combineWith: "OR" }
	});

	constructor(readonly tenantId: string) {}

	get size(): number {
		return this.tools.size;
	}

	upsert(tool: StoredTool): void {
		const previous = this.tools.get(tool.id);
		if (previous) {
			this.search.discard(tool.id);
			if (previous.tenant_id !== GLOBAL_TENANT) this.ownNames.delete(previous.name);
		}
		this.tools.set(tool.id, tool);
		this.search.add(tool);
		if (tool.tenant_id !== GLOBAL_TENANT) this.ownNames.set(tool.name, tool.id);
	}

	remove(id: string): void {
		const previous = this.tools.get(id);
		if (!previous) return;
		this.search.discard(id);
		this.tools.delete(id);
		if (previous.tenant_id !== GLOBAL_TENANT && this.ownNames.get(previous.name) === id)
			this.ownNames.delete(previous.name);
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
			// No query: every usable tool, by name, so the order is stable.
			return [...this.tools.values()]
				.filter(usable)
				.sort((a, b) => a.name.localeCompare(b.name))
				.slice(start, start + q.limit)
				.map(tool => ({ tool, score: 0 }));
		}
		return this.search
			.search(text, { filter: result => usable(this.tools.get(result.id as string)) })
			.slice(start, start + q.limit)
			.map(result => ({
				tool: this.tools.get(result.id as string)!,
				score: Math.round(result.score * 1000) / 1000
			}));
	}
}
