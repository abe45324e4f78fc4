import type { StoredTool } from "../../types/wire";
import type { RankedTool } from "../discovery/tenant-index";

/** One tool in the shape of MCP `tools/list`. */
export const mcpTool = (tool: StoredTool) => ({
	name: tool.name,
	description: tool.description,
	inputSchema: tool.parameters
});

/** `mcp`: the MCP `tools/list` result shape. */
export const toMcp = (ranked: RankedTool[]) => ({ tools: ranked.map(({ tool }) => mcpTool(tool)) });
