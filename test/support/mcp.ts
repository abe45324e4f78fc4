import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { LATEST_PROTOCOL_VERSION, McpError } from "@modelcontextprotocol/sdk/types.js";
import { SERVICE_TOKEN } from "./node";

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

/** An MCP client of the registry's own MCP server at `${baseUrl}/mcp`, connected as `tenant` with the service token. */
export async function registryMcpClient(baseUrl: string, tenant: string): Promise<Client> {
	const client = new Client({ name: "agent", version: "1.0.0" });
	await client.connect(
		new StreamableHTTPClientTransport(new URL(`${baseUrl}/mcp`), {
			requestInit: { headers: { authorization: `Bearer ${SERVICE_TOKEN}`, "x-tenant-id": tenant } }
		})
	);
	return client;
}
