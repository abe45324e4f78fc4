import type { StoredTool } from "../../types/wire";
import type { RankedTool } from "../discovery/tenant-index";

export type DiscoveryView = "full" | "summary";

/** Longest description in the summary view: enough to choose a tool, not to read its manual. */
const SUMMARY_DESCRIPTION_CHARS = 160;

/** Tools stored before health was recorded have none: their health is not known. */
const healthOf = (tool: StoredTool) => tool.health ?? { state: "unknown" as const };

/** The first SUMMARY_DESCRIPTION_CHARS characters, cut at a word. */
function shortDescription(description: string): string {
	if (description.length <= SUMMARY_DESCRIPTION_CHARS) return description;
	const cut = description.slice(0, SUMMARY_DESCRIPTION_CHARS - 1);
	return `${cut.slice(0, cut.lastIndexOf(" ") > 0 ? cut.lastIndexOf(" ") : cut.length)}…`;
}

/**
 * `native`: the stored tools with their score, which ranking found them (`match`) and their health,
 * best first. The summary view keeps what an agent needs to choose (under 250 bytes a tool).
 */
export const toNative = (ranked: RankedTool[], view: DiscoveryView = "full") => ({
	items:
		view === "summary"
			? ranked.map(({ tool, score }) => ({
					id: tool.id,
					name: tool.name,
					description: shortDescription(tool.description),
					type: tool.type,
					score,
					health: { state: healthOf(tool).state }
				}))
			: ranked.map(({ tool, score, match }) => ({ tool, score, match, health: healthOf(tool) }))
});

/** Tool name → `definition_hash`, for the formats whose tool entries have no room for it. */
export const definitionHashes = (ranked: RankedTool[]): Record<string, string> =>
	Object.fromEntries(ranked.map(({ tool }) => [tool.name, tool.definition_hash]));
