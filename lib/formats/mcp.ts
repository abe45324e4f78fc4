import type { StoredTool } from "../../types/wire";
import { stripHidden, stripHiddenDeep } from "../description-guard";
import type { RankedTool } from "../discovery/tenant-index";

/**
 * One tool in the shape of MCP `tools/list`, hidden characters stripped. `_meta.definition_hash`
 * is what a client sends back in `tools/call` `_meta` to pin the definition it was shown.
 */
export const mcpTool = (tool: StoredTool) => ({
	name: tool.name,
	description: stripHidden(tool.description),
	inputSchema: stripHiddenDeep(tool.parameters),
	_meta: { definition_hash: tool.definition_hash }
});

/** `mcp`: the MCP `tools/list` result shape. */
export const toMcp = (ranked: RankedTool[]) => ({ tools: ranked.map(({ tool }) => mcpTool(tool)) });
