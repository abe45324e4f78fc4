import { randomUUID } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { Server } from "@modelcontextprotocol/sdk/server/index.js";
import { SSEServerTransport } from "@modelcontextprotocol/sdk/server/sse.js";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import {
	CallToolRequestSchema,
	ErrorCode,
	ListToolsRequestSchema,
	McpError,
	type CallToolResult,
	type Tool
} from "@modelcontextprotocol/sdk/types.js";

type Handler = (args: Record<string, unknown>) => CallToolResult | Promise<CallToolResult>;

export interface UpstreamTool {
	tool: Tool;
	handler: Handler;
}

/**
 * A real MCP server built with the official SDK (Streamable HTTP, one session per client) on
 * loopback. Its tools can be changed while it runs (`notifyToolsChanged` tells every session),
 * it can be stopped and started again on the same port, and it records the headers it receives.
 * `tools/list` answers one tool per page, so clients must follow cursors.
 */
export class McpUpstream {
	readonly tools = new Map<string, UpstreamTool>();
	readonly receivedHeaders: http.IncomingHttpHeaders[] = [];
	/** Paths answered with a 307 to another URL (e.g. `/old` → this server's `/mcp`). */
	readonly redirects = new Map<string, string>();
	/** When set, every request is answered with this HTTP status, as by a failing proxy. */
	failWith: number | null = null;
	/** Requests received, answered or not. */
	hits = 0;
	private readonly sessions = new Map<string, { server: Server; transport: StreamableHTTPServerTransport }>();
	private server: http.Server | null = null;
	port = 0;

	get url(): string {
		return `http://127.0.0.1:${this.port}/mcp`;
	}

	define(tool: Tool, handler: Handler): void {
		this.tools.set(tool.name, { tool, handler });
	}

	async start(): Promise<void> {
		this.server = http.createServer((req, res) => void this.serve(req, res));
		this.server.listen(this.port, "127.0.0.1");
		await new Promise(resolve => this.server!.once("listening", resolve));
		this.port = (this.server.address() as AddressInfo).port;
	}

	/** Stops answering: sessions are forgotten and open connections cut, as when a server goes away. */
	async stop(): Promise<void> {
		for (const { server } of this.sessions.values()) await server.close().catch(() => undefined);
		this.sessions.clear();
		const server = this.server;
		this.server = null;
		if (!server) return;
		server.closeAllConnections();
		await new Promise(resolve => server.close(resolve));
	}

	async notifyToolsChanged(): Promise<void> {
		for (const { server } of this.sessions.values())
			await server.sendToolListChanged().catch(() => undefined);
	}

	/** Sessions that opened their standalone SSE stream, where notifications travel. */
	get sessionCount(): number {
		return this.sessions.size;
	}

	private newSession(): StreamableHTTPServerTransport {
		const server = new Server(
			{ name: "upstream", version: "1.0.0" },
			{ capabilities: { tools: { listChanged: true } } }
		);
		server.setRequestHandler(ListToolsRequestSchema, async request => {
			const names = [...this.tools.keys()];
			const index = request.params?.cursor ? Number(request.params.cursor) : 0;
			const next = index + 1 < names.length ? String(index + 1) : undefined;
			return {
				tools: names.slice(index, index + 1).map(name => this.tools.get(name)!.tool),
				nextCursor: next
			};
		});
		server.setRequestHandler(CallToolRequestSchema, async request => {
			const entry = this.tools.get(request.params.name);
			if (!entry) throw new McpError(ErrorCode.InvalidParams, `unknown tool ${request.params.name}`);
			return entry.handler(request.params.arguments ?? {});
		});
		const transport: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
			sessionIdGenerator: () => randomUUID(),
			onsessioninitialized: id => {
				this.sessions.set(id, { server, transport });
			}
		});
		void server.connect(transport);
		return transport;
	}

	private async serve(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
		this.receivedHeaders.push(req.headers);
		this.hits++;
		const redirect = this.redirects.get(new URL(req.url ?? "/", "http://upstream").pathname);
		if (redirect || this.failWith) {
			res.writeHead(redirect ? 307 : this.failWith!, redirect ? { location: redirect } : {});
			res.end();
			return;
		}
		const sessionId = req.headers["mcp-session-id"];
		const session = typeof sessionId === "string" ? this.sessions.get(sessionId) : undefined;
		if (sessionId && !session) {
			res.writeHead(404, { "Content-Type": "application/json" });
			res.end(
				JSON.stringify({ jsonrpc: "2.0", error: { code: -32001, message: "Session not found" }, id: null })
			);
			return;
		}
		const transport = session?.transport ?? this.newSession();
		await transport.handleRequest(req, res);
	}
}

/**
 * An MCP server of the older HTTP+SSE transport only (official SDK): GET opens the event stream,
 * messages are POSTed to the endpoint it names, and a Streamable HTTP POST is refused with 405.
 */
export async function legacySseServer(
	tools: UpstreamTool[]
): Promise<{ url: string; close(): Promise<void> }> {
	const transports = new Map<string, SSEServerTransport>();
	const server = http.createServer(async (req, res) => {
		const url = new URL(req.url ?? "/", "http://upstream");
		if (req.method === "GET" && url.pathname === "/sse") {
			const transport = new SSEServerTransport("/messages", res);
			transports.set(transport.sessionId, transport);
			const mcp = new Server({ name: "legacy", version: "1.0.0" }, { capabilities: { tools: {} } });
			mcp.setRequestHandler(ListToolsRequestSchema, async () => ({ tools: tools.map(entry => entry.tool) }));
			mcp.setRequestHandler(CallToolRequestSchema, async request =>
				tools.find(entry => entry.tool.name === request.params.name)!.handler(request.params.arguments ?? {})
			);
			await mcp.connect(transport);
			return;
		}
		const transport = transports.get(url.searchParams.get("sessionId") ?? "");
		if (req.method === "POST" && url.pathname === "/messages" && transport)
			return transport.handlePostMessage(req, res);
		res.writeHead(405).end();
	});
	server.listen(0, "127.0.0.1");
	await new Promise(resolve => server.once("listening", resolve));
	return {
		url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/sse`,
		close: () => {
			server.closeAllConnections();
			return new Promise(resolve => server.close(() => resolve()));
		}
	};
}
