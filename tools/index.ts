import { constantJson } from "../lib/canonical-json";
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

// Every tool that gives no parameters shares its type's: constants, serialized once for definition hashes.
for (const tool of Object.values(toolTypes)) constantJson(tool.parameters);

export const toolFor = (type: string): BaseTool | undefined =>
	Object.prototype.hasOwnProperty.call(toolTypes, type) ? toolTypes[type] : undefined;

/** Types whose definition is not enough: their API must answer a probe before they run. */
export const needsProbe = (type: unknown): boolean =>
	typeof type === "string" && Boolean(toolFor(type)?.probe);
