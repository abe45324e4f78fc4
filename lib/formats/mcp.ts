import type { StoredTool, ToolAnnotations } from "../../types/wire";
import { stripHidden, stripHiddenDeep } from "../description-guard";
import type { RankedTool } from "../discovery/tenant-index";

/**
 * One tool in the shape of MCP `tools/list`, hidden characters stripped. `_meta.definition_hash`
 * is what a client sends back in `tools/call` `_meta` to pin the definition it was shown.
 */
export const mcpTool = (tool: StoredTool) => ({
	name: tool.name,
	...(tool.annotations?.title ? { title: stripHidden(tool.annotations.title) } : {}),
	description: stripHidden(tool.description),
	inputSchema: stripHiddenDeep(tool.parameters),
	...(tool.output_schema ? { outputSchema: stripHiddenDeep(tool.output_schema) } : {}),
	...(tool.annotations ? { annotations: mcpAnnotations(tool.annotations) } : {}),
	_meta: { definition_hash: tool.definition_hash }
});

/** The registry's annotations under MCP's names; a hint the tool does not state is left out. */
function mcpAnnotations(annotations: ToolAnnotations) {
	const hints: Record<string, string | boolean> = {};
	if (annotations.title) hints.title = stripHidden(annotations.title);
	if (annotations.read_only !== undefined) hints.readOnlyHint = annotations.read_only;
	if (annotations.destructive !== undefined) hints.destructiveHint = annotations.destructive;
	if (annotations.idempotent !== undefined) hints.idempotentHint = annotations.idempotent;
	if (annotations.open_world !== undefined) hints.openWorldHint = annotations.open_world;
	return hints;
}

/** `mcp`: the MCP `tools/list` result shape. */
export const toMcp = (ranked: RankedTool[]) => ({ tools: ranked.map(({ tool }) => mcpTool(tool)) });
