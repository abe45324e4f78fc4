import type { ToolDefinition } from "../types/wire";

/** Both built-ins compute from their arguments alone: nothing changes and nothing outside is reached. */
const PURE_FUNCTION = { read_only: true, destructive: false, idempotent: true, open_world: false };

/** Global tools present from first start. */
export const BUILTIN_TOOLS: ToolDefinition[] = [
	{
		name: "calculator",
		type: "calculator",
		description:
			"Evaluate a math expression: add, subtract, multiply or divide numbers, percentages, functions (sqrt, sin, log, ...), and unit conversion such as '3 hours to minutes' or '5 km to m'.",
		metadata: { tags: ["math", "calculator", "units", "builtin"], category: "utility" },
		output_schema: {
			type: "object",
			properties: {
				value: {
					type: ["number", "string"],
					description: "The result: a number, or its text form such as '5000 m'"
				}
			},
			required: ["value"]
		},
		annotations: { title: "Calculator", ...PURE_FUNCTION }
	},
	{
		name: "datetime",
		type: "datetime",
		description:
			"Current date and time, time zone conversion, date arithmetic, differences and formatting with IANA time zones.",
		metadata: { tags: ["date", "time", "timezone", "builtin"], category: "utility" },
		annotations: { title: "Date and time", ...PURE_FUNCTION }
	}
];
