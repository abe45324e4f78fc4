import type { RankedTool } from "../discovery/tenant-index";

/** `anthropic`: the Messages API `tools` entries. */
export const toAnthropic = (ranked: RankedTool[]) => ({
	tools: ranked.map(({ tool }) => ({
		name: tool.name,
		description: tool.description,
		input_schema: tool.parameters
	}))
});
