import type { BaseTool } from "./base";
import { calculatorTool } from "./calculator";
import { datetimeTool } from "./datetime";
import { externalApiTool } from "./external-api";
import { mcpTool } from "./mcp";
import { moleculerActionTool } from "./moleculer-action";
import { ragQueryTool, ragSearchTool } from "./rag";

/** Tool types by name: the one place a new type is plugged in. */
export const toolTypes: Readonly<Record<string, BaseTool>> = Object.freeze(
	Object.fromEntries(
		[
			calculatorTool,
			datetimeTool,
			ragQueryTool,
			ragSearchTool,
			externalApiTool,
			mcpTool,
			moleculerActionTool
		].map(tool => [tool.type, tool])
	)
);

export const toolFor = (type: string): BaseTool | undefined =>
	Object.prototype.hasOwnProperty.call(toolTypes, type) ? toolTypes[type] : undefined;

/** Types whose definition is not enough: their API must answer a probe before they run. */
export const needsProbe = (type: unknown): boolean =>
	typeof type === "string" && Boolean(toolFor(type)?.probe);
