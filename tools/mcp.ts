import { isRequestTimeout } from "../lib/errors";
import type { RemoteCallOutcome } from "../lib/sources/mcp-connection";
import { ToolFailure, type BaseTool } from "./base";

/**
 * One tool of a remote MCP server registered as a source. The `sources` service holds the pooled
 * client of that server (with its circuit breaker and concurrency bound) and makes the `tools/call`.
 */
export const mcpTool: BaseTool = {
	type: "mcp",
	parameters: { type: "object", properties: {} },
	configSchema: {
		type: "object",
		properties: {
			source_id: { type: "string", minLength: 1, maxLength: 64 },
			remote_name: { type: "string", minLength: 1, maxLength: 128 }
		},
		required: ["source_id", "remote_name"],
		additionalProperties: false
	},

	async execute(params, config, context) {
		let outcome: RemoteCallOutcome;
		try {
			outcome = (await context.call(
				"sources.callTool",
				{
					source_id: config.source_id as string,
					remote_name: config.remote_name as string,
					arguments: params,
					timeout_ms: context.timeout_ms
				},
				{ tenant_id: context.tenant_id, agent_id: context.agent_id }
			)) as RemoteCallOutcome;
		} catch (err) {
			const e = err as { message?: string; code?: number };
			if (isRequestTimeout(err))
				throw new ToolFailure("timeout", `the remote tool did not answer within ${context.timeout_ms} ms`);
			if (e.code === 404) throw new ToolFailure("tool_error", "the tool's source no longer exists");
			throw new ToolFailure(
				"upstream_error",
				`the tool's source cannot be reached: ${e.message ?? String(err)}`
			);
		}
		if (!outcome.ok) throw new ToolFailure(outcome.type, outcome.message);
		return outcome.result;
	}
};
