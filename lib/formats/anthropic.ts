import { stripHidden, stripHiddenDeep } from "../description-guard";
import type { RankedTool } from "../discovery/tenant-index";
import { definitionHashes } from "./native";

/**
 * `anthropic`: the Messages API `tools` entries, hidden characters stripped. The hashes to pin
 * with sit beside `tools` so the list can be handed to the API as it is.
 */
export const toAnthropic = (ranked: RankedTool[]) => ({
	tools: ranked.map(({ tool }) => ({
		name: tool.name,
		description: stripHidden(tool.description),
		input_schema: stripHiddenDeep(tool.parameters)
	})),
	definition_hashes: definitionHashes(ranked)
});
