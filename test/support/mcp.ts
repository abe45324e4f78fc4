import { LATEST_PROTOCOL_VERSION, McpError } from "@modelcontextprotocol/sdk/types.js";

/** A raw client's `initialize` request (JSON-RPC id 1), for tests that speak HTTP themselves. */
export const INITIALIZE = {
	jsonrpc: "2.0",
	id: 1,
	method: "initialize",
	params: {
		protocolVersion: LATEST_PROTOCOL_VERSION,
		capabilities: {},
		clientInfo: { name: "raw", version: "0" }
	}
} as const;

/** The rejection of `promise`, which must be an MCP protocol error (a JSON-RPC error answer). */
export async function protocolError(promise: Promise<unknown>): Promise<McpError> {
	const outcome = await promise.then(
		value => ({ value }),
		(error: unknown) => ({ error })
	);
	if (!("error" in outcome))
		throw new Error(`expected a protocol error, got ${JSON.stringify(outcome.value)}`);
	expect(outcome.error).toBeInstanceOf(McpError);
	return outcome.error as McpError;
}
