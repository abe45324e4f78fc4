import type { RankedTool } from "../discovery/tenant-index";

/** `native`: the stored tools (each with its `definition_hash`) with their scores and health, best first. */
export const toNative = (ranked: RankedTool[]) => ({
	items: ranked.map(({ tool, score }) => ({ tool, score, health: tool.health }))
});

/** Tool name → `definition_hash`, for the formats whose tool entries have no room for it. */
export const definitionHashes = (ranked: RankedTool[]): Record<string, string> =>
	Object.fromEntries(ranked.map(({ tool }) => [tool.name, tool.definition_hash]));
