import type { RankedTool } from "../discovery/tenant-index";

/** `native`: the stored tools with their scores and health, best first. */
export const toNative = (ranked: RankedTool[]) => ({
	items: ranked.map(({ tool, score }) => ({ tool, score, health: tool.health }))
});
