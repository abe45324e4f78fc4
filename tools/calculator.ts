import path from "node:path";
import type { JsonObject } from "../types/wire";
import { type BaseTool, type ToolContext, ToolFailure } from "./base";
import { CalculatorPool } from "./calculator.pool";

const MAX_EXPRESSION_LENGTH = 1000;
/** Longest any one evaluation may run, whatever the tool's own timeout. */
const MAX_EVALUATION_MS = 2000;

/** The calculator's worker threads: one pool per process, whichever executor runs it. */
export const calculatorPool = new CalculatorPool(
	path.join(__dirname, `calculator.worker${path.extname(__filename)}`)
);

export const calculatorTool: BaseTool = {
	type: "calculator",
	parameters: {
		type: "object",
		properties: {
			expression: {
				type: "string",
				minLength: 1,
				maxLength: MAX_EXPRESSION_LENGTH,
				description: 'A math expression, e.g. "sqrt(2) * 3", "sin(pi / 4)" or "5 km to m"'
			}
		},
		required: ["expression"],
		additionalProperties: false
	},
	configSchema: { type: "object", additionalProperties: false, properties: {} },

	async execute(params: JsonObject, _config: JsonObject, context: ToolContext): Promise<JsonObject> {
		const expression = params.expression;
		// Checked here too: a 100 KB string should not even be copied to a worker.
		if (typeof expression !== "string" || expression.trim() === "") {
			throw new ToolFailure("tool_error", "expression must be a non-empty string");
		}
		if (expression.length > MAX_EXPRESSION_LENGTH) {
			const message = `expression is longer than ${MAX_EXPRESSION_LENGTH} characters`;
			throw new ToolFailure("tool_error", message);
		}
		// The execution's signal fires at its timeout, never before this limit: the pool's deadline covers it.
		const limitMs = Math.max(1, Math.min(context.timeout_ms, MAX_EVALUATION_MS));
		return { value: await calculatorPool.evaluate(expression, limitMs, context.tenant_id) };
	},

	/** Starts the pool and loads mathjs in a worker, so the first caller does not pay for it. */
	async start(): Promise<void> {
		calculatorPool.open();
		await calculatorPool.evaluate("1", MAX_EVALUATION_MS, "").catch(() => undefined);
	},

	close(): Promise<void> {
		return calculatorPool.close();
	}
};
