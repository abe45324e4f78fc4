import type { StoredTool } from "../../types/wire";
import type { RankedTool } from "../discovery/tenant-index";

export type DiscoveryView = "full" | "summary";

/** Longest description in the summary view: enough to choose a tool, not to read its manual. */
const SUMMARY_DESCRIPTION_CHARS = 120;
/** A clause break (": ", "; ", " — ") ends the summary only after this many characters. */
const MIN_CLAUSE_CHARS = 24;

/** A sentence ends at . ! or ? followed by a capital or the end, except after "e.g", "i.e", "etc", "vs". */
const SENTENCE = /^.*?(?<!\b(?:e\.g|i\.e|etc|vs))[.!?](?=\s+\p{Lu}|\s*$)/su;
const CLAUSE = new RegExp(`^(.{${MIN_CLAUSE_CHARS},}?)(?::\\s|;\\s|\\s[—–]\\s)`, "su");

/**
 * What an agent chooses a tool by: the description's first sentence without its asides in
 * parentheses, up to its first clause break ("Get the current weather for a city: temperature,
 * humidity…" → "Get the current weather for a city"), at most SUMMARY_DESCRIPTION_CHARS characters
 * cut at a word. The full view has the whole description.
 */
export function gist(description: string): string {
	const sentence = (SENTENCE.exec(description)?.[0] ?? description).replace(/\s*\([^()]*\)/g, "");
	const text = (CLAUSE.exec(sentence)?.[1] ?? sentence).trim().replace(/[.!?]$/, "");
	if (text.length <= SUMMARY_DESCRIPTION_CHARS) return text;
	const cut = text.slice(0, SUMMARY_DESCRIPTION_CHARS - 1);
	return `${cut.slice(0, cut.lastIndexOf(" ") > 0 ? cut.lastIndexOf(" ") : cut.length)}…`;
}

/** Tools stored before health was recorded have none: their health is not known. */
const healthOf = (tool: StoredTool) => tool.health ?? { state: "unknown" as const };

/**
 * `native`: the stored tools with their score, which ranking found them (`match`) and their health,
 * best first. The summary view keeps what an agent needs to choose: the description's gist, the score
 * to three decimals, and the health state (the contract's summary fields).
 */
export const toNative = (ranked: RankedTool[], view: DiscoveryView = "full") => ({
	items:
		view === "summary"
			? ranked.map(({ tool, score }) => ({
					id: tool.id,
					name: tool.name,
					description: gist(tool.description),
					type: tool.type,
					score: Math.round(score * 1000) / 1000,
					health: { state: healthOf(tool).state }
				}))
			: ranked.map(({ tool, score, match }) => ({ tool, score, match, health: healthOf(tool) }))
});

/** Tool name → `definition_hash`, for the formats whose tool entries have no room for it. */
export const definitionHashes = (ranked: RankedTool[]): Record<string, string> =>
	Object.fromEntries(ranked.map(({ tool }) => [tool.name, tool.definition_hash]));
