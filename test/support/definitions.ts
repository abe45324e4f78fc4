/**
 * Valid definitions of the built-in tool types, for tests that need a tool and do not care which:
 * a description is required, so every registration carries one. `extra` fields go on top.
 */
export const calculatorTool = (name: string, extra: Record<string, unknown> = {}) => ({
	name,
	description: "Evaluates an arithmetic expression",
	type: "calculator",
	...extra
});

export const clockTool = (name: string, extra: Record<string, unknown> = {}) => ({
	name,
	description: "Tells the date and time in a time zone",
	type: "datetime",
	...extra
});
