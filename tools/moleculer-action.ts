import { isNoNode, isRequestTimeout } from "../lib/errors";
import type { JsonObject, ValidationProblem } from "../types/wire";
import { ToolFailure, type BaseTool } from "./base";

/**
 * This service's own actions and the broker's internals are never tool targets: a tenant must
 * not reach key management or cluster introspection by wrapping them in a tool.
 */
const RESERVED_SERVICES = [
	"$node",
	"api",
	"keys",
	"registry",
	"validator",
	"executor",
	"notifier",
	"sources",
	"audit"
];

export const isReservedAction = (action: string): boolean =>
	RESERVED_SERVICES.some(service => action === service || action.startsWith(`${service}.`));

export const moleculerActionTool: BaseTool = {
	type: "moleculer_action",
	callsOut: true,
	parameters: { type: "object", properties: {} },
	configSchema: {
		type: "object",
		properties: {
			action: { type: "string", pattern: "^[A-Za-z0-9_$][A-Za-z0-9_$.-]{0,199}$" }
		},
		required: ["action"],
		additionalProperties: false
	},

	checkConfig(config: JsonObject): ValidationProblem[] {
		return typeof config.action === "string" && isReservedAction(config.action)
			? [
					{
						field: "config.action",
						message: "must not target the registry's own or the broker's internal actions"
					}
				]
			: [];
	},

	async execute(params, config, context) {
		const action = config.action as string;
		try {
			const result = await context.call(action, params, {
				tenant_id: context.tenant_id,
				agent_id: context.agent_id
			});
			return result !== null && typeof result === "object" && !Array.isArray(result)
				? (result as JsonObject)
				: { value: result ?? null };
		} catch (err) {
			if (isNoNode(err)) throw new ToolFailure("upstream_error", `no node provides '${action}'`);
			if (isRequestTimeout(err)) throw new ToolFailure("timeout", `'${action}' timed out`);
			throw new ToolFailure("tool_error", (err as Error).message ?? String(err));
		}
	}
};
