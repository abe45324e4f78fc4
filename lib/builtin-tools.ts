import type { ToolDefinition } from "../types/wire";

/** Global tools present from first start. */
export const BUILTIN_TOOLS: ToolDefinition[] = [
	{
		name: "calculator",
		type: "calculator",
		description:
			"Evaluate a math expression: arithmetic, functions (sqrt, sin, log, ...), and unit conversion such as '5 km to m'.",
		metadata: { tags: ["math", "calculator", "units", "builtin"], category: "utility" }
	},
	{
		name: "datetime",
		type: "datetime",
		description:
			"Current date and time, time zone conversion, date arithmetic, differences and formatting with IANA time zones.",
		metadata: { tags: ["date", "time", "timezone", "builtin"], category: "utility" }
	}
];
