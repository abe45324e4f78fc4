import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { SSEClientTransport } from "@modelcontextprotocol/sdk/client/sse.js";
import {
	StreamableHTTPClientTransport,
	StreamableHTTPError
} from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import type { Transport } from "@modelcontextprotocol/sdk/shared/transport.js";
import {
	ErrorCode,
	McpError,
	ToolListChangedNotificationSchema,
	type Tool
} from "@modelcontextprotocol/sdk/types.js";
import { OutboundError, OutboundRefused } from "../outbound/guarded-fetch";
import { createGuardedWebFetch, type GuardedWebFetch } from "../outbound/guarded-web-fetch";
import type { FailureType, JsonObject } from "../../types/wire";

export interface McpConnectionOptions {
	url: string;
	headers: Record<string, string>;
	allowHosts: readonly string[];
	/** Bounds connecting and each listing request. */
	timeoutMs: number;
	/** Called when the server announces `notifications/tools/list_changed`. */
	onToolsChanged(): void;
	clientName: string;
	clientVersion: string;
}

/** Pages read from `tools/list` at most: a server that never stops paging is cut off. */
const MAX_LIST_PAGES = 100;

/** The outcome of one remote `tools/call`, as it crosses the transporter (never thrown). */
export type RemoteCallOutcome =
	{ ok: true; result: JsonObject } | { ok: false; type: FailureType; message: string };

const isAbort = (err: unknown) =>
	(err as Error)?.name === "AbortError" || (err as Error)?.name === "TimeoutError";

/** Why a connection attempt failed, in words a tenant can act on (never the headers). */
export function describeConnectError(err: unknown): string {
	if (err instanceof OutboundRefused) return err.message;
	const cause = (err as { cause?: unknown }).cause;
	if (cause instanceof OutboundRefused) return cause.message;
	if (err instanceof StreamableHTTPError && typeof err.code === "number" && err.code >= 300 && err.code < 400)
		return `the server answered ${err.code}: the SDK client follows redirects within the server's origin only`;
	if (err instanceof StreamableHTTPError) return `the server answered ${err.code ?? "an error"}`;
	const code = (cause as NodeJS.ErrnoException | undefined)?.code;
	if (code) return `the server cannot be reached (${code})`;
	return (err as Error)?.message || "the server cannot be reached";
}

/** The refusal behind a failed connection, if the address guard refused it. */
export function refusalOf(err: unknown): OutboundRefused | null {
	if (err instanceof OutboundRefused) return err;
	const cause = (err as { cause?: unknown }).cause;
	return cause instanceof OutboundRefused ? cause : null;
}

/**
 * One pooled client of a remote MCP server (a source): connected on first use with the official SDK
 * (Streamable HTTP, falling back to the older HTTP+SSE transport when the server refuses the first
 * request), reconnected after the server drops the session or goes away. All its traffic goes through
 * the guarded fetch, so every address and redirect passes the outbound address guard.
 */
export class McpConnection {
	private client: Client | null = null;
	private connecting: Promise<Client> | null = null;
	private readonly http: GuardedWebFetch;
	private closed = false;

	constructor(private readonly options: McpConnectionOptions) {
		this.http = createGuardedWebFetch({
			allowHosts: options.allowHosts,
			connectTimeoutMs: options.timeoutMs
		});
	}

	/** Every tool of the server, all pages of `tools/list`. */
	async listTools(): Promise<Tool[]> {
		const client = await this.connected();
		const tools: Tool[] = [];
		let cursor: string | undefined;
		for (let page = 0; page < MAX_LIST_PAGES; page++) {
			const answer = await this.dropOnFailure(
				client,
				client.listTools(cursor ? { cursor } : {}, { timeout: this.options.timeoutMs })
			);
			tools.push(...answer.tools);
			cursor = answer.nextCursor;
			if (!cursor) return tools;
		}
		throw new OutboundError(`tools/list did not end within ${MAX_LIST_PAGES} pages`);
	}

	/**
	 * Calls one remote tool. A result with `isError` is a failed execution; protocol errors of the
	 * server (unknown tool, invalid arguments) are the tool's; anything else is the upstream's. A
	 * session the server no longer knows (it restarted) is reopened and the call sent once more:
	 * the server answered 404 without running it.
	 */
	async callTool(
		name: string,
		args: JsonObject,
		timeoutMs: number,
		signal?: AbortSignal
	): Promise<RemoteCallOutcome> {
		for (let attempt = 0; ; attempt++) {
			try {
				const client = await this.connected();
				const answer = await this.dropOnFailure(
					client,
					client.callTool({ name, arguments: args }, undefined, { timeout: timeoutMs, signal })
				);
				const content = (answer.content ?? []) as JsonObject[];
				if (answer.isError) {
					const text = content
						.filter(item => item.type === "text")
						.map(item => String(item.text))
						.join("\n");
					return { ok: false, type: "tool_error", message: text || "the remote tool reported an error" };
				}
				const structured = answer.structuredContent as JsonObject | undefined;
				return { ok: true, result: structured ?? { content } };
			} catch (err) {
				const staleSession = err instanceof StreamableHTTPError && err.code === 404;
				if (staleSession && attempt === 0) continue;
				return this.failure(err, timeoutMs);
			}
		}
	}

	async close(): Promise<void> {
		this.closed = true;
		const client = this.client;
		this.client = null;
		await client?.close().catch(() => undefined);
		await this.http.close();
	}

	private failure(err: unknown, timeoutMs: number): RemoteCallOutcome {
		if (err instanceof McpError && err.code === ErrorCode.RequestTimeout)
			return { ok: false, type: "timeout", message: `the remote tool did not answer within ${timeoutMs} ms` };
		if (isAbort(err))
			return { ok: false, type: "timeout", message: `the remote tool did not answer within ${timeoutMs} ms` };
		if (err instanceof McpError && err.code !== ErrorCode.ConnectionClosed)
			return { ok: false, type: "tool_error", message: err.message };
		const refusal = refusalOf(err);
		if (refusal) return { ok: false, type: "tool_error", message: refusal.message };
		return { ok: false, type: "upstream_error", message: describeConnectError(err) };
	}

	/** A transport failure leaves the client unusable: the next call connects afresh. */
	private async dropOnFailure<T>(client: Client, request: Promise<T>): Promise<T> {
		try {
			return await request;
		} catch (err) {
			if (!(err instanceof McpError) || err.code === ErrorCode.ConnectionClosed) this.drop(client);
			throw err;
		}
	}

	private drop(client: Client): void {
		if (this.client !== client) return;
		this.client = null;
		client.close().catch(() => undefined);
	}

	private connected(): Promise<Client> {
		if (this.closed) return Promise.reject(new OutboundError("the source's connection is closed"));
		if (this.client) return Promise.resolve(this.client);
		this.connecting ??= this.connect().finally(() => (this.connecting = null));
		return this.connecting;
	}

	private async connect(): Promise<Client> {
		const url = new URL(this.options.url);
		const transportOptions = { fetch: this.http.fetch, requestInit: { headers: this.options.headers } };
		try {
			return await this.open(new StreamableHTTPClientTransport(url, transportOptions));
		} catch (err) {
			// A server of the older protocol answers the Streamable HTTP POST with a client error.
			const olderProtocol =
				err instanceof StreamableHTTPError &&
				typeof err.code === "number" &&
				err.code >= 400 &&
				err.code < 500;
			if (!olderProtocol) throw err;
			return this.open(new SSEClientTransport(url, transportOptions));
		}
	}

	private async open(transport: Transport): Promise<Client> {
		const client = new Client({ name: this.options.clientName, version: this.options.clientVersion });
		client.setNotificationHandler(ToolListChangedNotificationSchema, async () =>
			this.options.onToolsChanged()
		);
		client.onclose = () => {
			if (this.client === client) this.client = null;
		};
		try {
			await client.connect(transport, { timeout: this.options.timeoutMs });
		} catch (err) {
			await client.close().catch(() => undefined);
			throw err;
		}
		if (this.closed) {
			await client.close().catch(() => undefined);
			throw new OutboundError("the source's connection is closed");
		}
		this.client = client;
		return client;
	}
}
