import type { StoredTool, ToolDefinition } from "../types/wire";

/**
 * The release of the built-ins' definitions, stored with each as `metadata.builtin_release`. Raise it
 * with any change to them: a store kept from an earlier release then takes the change once, at the
 * next start (`test/unit/builtin-tools.test.ts` fails until it is raised).
 */
export const BUILTIN_RELEASE = 2;

/** Both built-ins compute from their arguments alone: nothing changes and nothing outside is reached. */
const PURE_FUNCTION = { read_only: true, destructive: false, idempotent: true, open_world: false };

/** Global tools present from first start. */
export const BUILTIN_TOOLS: ToolDefinition[] = [
	{
		name: "calculator",
		type: "calculator",
		description:
			"Evaluate a math expression: add, subtract, multiply or divide numbers, percentages, functions (sqrt, sin, log, ...), and unit conversion such as '3 hours to minutes' or '5 km to m'.",
		metadata: {
			tags: ["math", "calculator", "units", "builtin"],
			category: "utility",
			builtin_release: BUILTIN_RELEASE
		},
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
		metadata: {
			tags: ["date", "time", "timezone", "builtin"],
			category: "utility",
			builtin_release: BUILTIN_RELEASE
		},
		annotations: { title: "Date and time", ...PURE_FUNCTION }
	}
];

/**
 * Whether a stored global tool is `definition`'s built-in as an earlier release stored it. Not an
 * operator's own tool of that name and another type, and not one this release (or a later one, during
 * a rolling upgrade) stored already: an operator's later edits stay.
 */
export function isEarlierBuiltin(
	tool: Pick<StoredTool, "type" | "metadata">,
	definition: ToolDefinition
): boolean {
	if (tool.type !== definition.type) return false;
	const release = tool.metadata.builtin_release;
	// Releases before the marker tagged their built-ins "builtin".
	if (release === undefined)
		return Array.isArray(tool.metadata.tags) && tool.metadata.tags.includes("builtin");
	return typeof release === "number" && release < BUILTIN_RELEASE;
}
