import { ErrorCode, type CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { toErrorBody } from "../error-response";
import type { JsonObject } from "../../types/wire";

/**
 * A caller's mistake from the cluster (404 tool, 422 arguments) becomes an MCP protocol error. The
 * SDK sends any error with a numeric `code` as it is; McpError would prefix "MCP error" to the text,
 * which clients prefix again. The offending fields go into the text, which is what LLM clients show.
 */
export function protocolError(err: unknown): Error {
	const body = toErrorBody(err);
	const fields = Array.isArray(body.data)
		? (body.data as { field?: string; message?: string }[]).map(p => `${p.field} ${p.message}`).join("; ")
		: "";
	return Object.assign(new Error(fields ? `${body.message}: ${fields}` : body.message), {
		code: body.code < 500 ? ErrorCode.InvalidParams : ErrorCode.InternalError,
		data: body.data
	});
}

/** An MCP error with a JSON-RPC code, sent as it is (see protocolError). */
export const rpcError = (code: ErrorCode, message: string): Error =>
	Object.assign(new Error(message), { code });

/** A tool's result: `structuredContent` plus the same JSON as text, for clients that read only text. */
export const successResult = (result: JsonObject): CallToolResult => ({
	content: [{ type: "text", text: JSON.stringify(result) }],
	structuredContent: result
});

/**
 * A failed run: no structuredContent, since a client checks that against the tool's outputSchema.
 */
export const errorResult = (error: { type: string; message: string }): CallToolResult => ({
	content: [{ type: "text", text: `${error.type}: ${error.message}` }],
	isError: true
});
