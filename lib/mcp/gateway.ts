import { createHash, randomUUID } from "crypto";
import type { IncomingMessage, ServerResponse } from "http";
import { Server } from "@modelcontextprotocol/sdk/server/index.js";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import { CallToolRequestSchema, ErrorCode, ListToolsRequestSchema } from "@modelcontextprotocol/sdk/types.js";
import { systemClock, type Clock, type ClockTimer } from "../clock";
import { sendError } from "../error-response";
import { forbidden, invalid, lacksScope, notFound, rateLimited } from "../errors";
import { createAjv, toProblems } from "../json-schema";
import { callerKey } from "./caller-key";
import type { McpSessionLogs } from "./event-log";
import { QueueTaskStore, type McpTaskBackend, type McpTaskOptions } from "./queue-task-store";
import { errorResult, protocolError, rpcError, successResult } from "./results";
import { resumeTransport } from "./resumed-transport";
import type { McpTaskIndex } from "./task-index";
import type { CallerMeta, JsonObject, ValidationProblem } from "../../types/wire";
import { GLOBAL_TENANT } from "../tenancy";

/** What the MCP server needs from the cluster; the gateway implements it with its own calls. */
export interface McpBackend extends McpTaskBackend {
	/**
	 * Resolves the request's credential, counts it against the rate limit and checks `tools:read`;
	 * throws the same errors as REST authentication.
	 */
	identify(req: IncomingMessage): Promise<CallerMeta>;
	/** A page of the tools the caller may use, in MCP `tools/list` shape, by name. */
	listTools(meta: CallerMeta, offset: number, limit: number): Promise<{ tools: McpToolShape[] }>;
	/** Ranked tools for a natural-language query, in MCP shape. */
	searchTools(meta: CallerMeta, query: JsonObject): Promise<{ tools: McpToolShape[] }>;
	/**
	 * Runs a tool by name; resolves the execution envelope. `expectedHash`
	 * (from the call's `_meta.definition_hash`) refuses to run a definition other than the one shown.
	 */
	execute(meta: CallerMeta, name: string, parameters: JsonObject, expectedHash?: string): Promise<JsonObject>;
}

export interface McpToolShape {
	name: string;
	description: string;
	inputSchema: JsonObject;
	_meta?: { definition_hash?: string };
	/** MCP Tasks: whether a call may (`optional`) or must not (`forbidden`) run as a queued task. */
	execution?: { taskSupport: "forbidden" | "optional" | "required" };
}

export interface McpGatewayOptions {
	/** A session silent this long is closed. */
	idleSessionMs?: number;
	/** Open sessions per credential (an API key; the service token per tenant); past it 429. */
	maxSessionsPerCredential?: number;
	/** Open sessions on this gateway, all credentials together; past it 429. */
	maxSessions?: number;
	/** A session silent this long may be closed to make room for a new one at a cap. */
	evictIdleAfterMs?: number;
	/** SSE events of each session, for clients that reconnect with `Last-Event-ID` (to any node when shared). */
	logs: McpSessionLogs;
	/** The `retry` hint of every SSE stream: how long a client waits before reconnecting. */
	sseRetryMs?: number;
	/** Times sessions' silence and the sweep of silent ones; the system clock unless given. */
	clock?: Clock;
	/**
	 * The gateway listens on loopback only: refuse a Host or Origin that is not a loopback name,
	 * so a web page whose domain was re-bound to 127.0.0.1 cannot reach the server (DNS rebinding).
	 */
	loopbackOnly?: boolean;
	/** MCP Tasks: which tasks each caller created, and how tasks are reported. */
	tasks: McpTaskOptions & { index: McpTaskIndex };
}

interface Session {
	transport: StreamableHTTPServerTransport;
	server: Server;
	meta: CallerMeta;
	/** Whose session it is, for the per-credential cap (a digest, never the credential). */
	credential: string;
	lastSeen: number;
	/** When the session's shared record was last renewed. */
	claimedAt: number;
}

/** Each session holds about 45 KiB (server, transport, replay log): the caps bound that memory. */
export const DEFAULT_SESSION_LIMITS = {
	maxSessionsPerCredential: 50,
	maxSessions: 2000,
	evictIdleAfterMs: 60_000
};

/**
 * The credential behind a request, as a digest: an API key is one credential; the service token acts
 * for many tenants, so each tenant it acts for counts as one.
 */
function credentialOf(req: IncomingMessage, meta: CallerMeta): string {
	const digest = createHash("sha256")
		.update(req.headers.authorization ?? "")
		.digest("base64url");
	return meta.auth === "service_token" ? `${digest}:${meta.tenant_id}` : digest;
}

const PAGE_SIZE = 50;

/** The form of the session ids this server issues: anything else is not looked up. */
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** The meta-tool that lets an agent ask for the right tools instead of loading them all. */
export const SEARCH_TOOLS: McpToolShape = {
	name: "search_tools",
	description:
		"Find the registry's tools that fit a task, described in natural language. Returns the best matches with their input schemas.",
	inputSchema: {
		type: "object",
		properties: {
			query: { type: "string", maxLength: 500, description: "What the tool should do" },
			limit: { type: "integer", minimum: 1, maximum: 20, description: "How many tools (default 5)" },
			types: { type: "array", items: { type: "string" } },
			tags: { type: "array", items: { type: "string" } }
		},
		required: ["query"],
		additionalProperties: false
	},
	// A search answers at once from the catalog: there is nothing to queue.
	execution: { taskSupport: "forbidden" }
};

/** Every registry tool may run as a task of the tenant's queue. */
const QUEUEABLE = { taskSupport: "optional" } as const;

const encodeCursor = (offset: number) => Buffer.from(String(offset)).toString("base64url");
const decodeCursor = (cursor: string | undefined) => {
	if (!cursor) return 0;
	const offset = Number(Buffer.from(cursor, "base64url").toString());
	if (!Number.isInteger(offset) || offset < 0) throw rpcError(ErrorCode.InvalidParams, "invalid cursor");
	return offset;
};

const checkSearchArguments = createAjv().compile(SEARCH_TOOLS.inputSchema);

const LOOPBACK_NAMES = new Set(["localhost", "127.0.0.1", "[::1]"]);

/** Whether a Host (`name[:port]`) or Origin (`scheme://name[:port]`) header names a loopback host. */
function namesLoopback(value: string, isOrigin: boolean): boolean {
	try {
		return LOOPBACK_NAMES.has(new URL(isOrigin ? value : `http://${value}`).hostname);
	} catch {
		return false;
	}
}

/**
 * The registry as a Model Context Protocol server (Streamable HTTP). Every HTTP request is
 * authenticated like REST; a session is bound to the tenant and agent that opened it.
 */
export class McpGateway {
	private readonly sessions = new Map<string, Session>();
	private readonly sweeper: ClockTimer;
	private readonly clock: Clock;

	private readonly idleSessionMs: number;
	private readonly limits: typeof DEFAULT_SESSION_LIMITS;
	/** Sessions of other nodes being taken on here, by id. */
	private readonly resuming = new Map<string, Promise<Session | null>>();
	/** Sessions being opened (initialize in flight) per credential, so concurrent opens cannot pass a cap. */
	private readonly opening = new Map<string, number>();

	constructor(
		private readonly backend: McpBackend,
		private readonly options: McpGatewayOptions
	) {
		this.idleSessionMs = options.idleSessionMs ?? 30 * 60 * 1000;
		this.limits = {
			maxSessionsPerCredential:
				options.maxSessionsPerCredential ?? DEFAULT_SESSION_LIMITS.maxSessionsPerCredential,
			maxSessions: options.maxSessions ?? DEFAULT_SESSION_LIMITS.maxSessions,
			evictIdleAfterMs: options.evictIdleAfterMs ?? DEFAULT_SESSION_LIMITS.evictIdleAfterMs
		};
		this.clock = options.clock ?? systemClock;
		this.sweeper = this.clock.setInterval(() => this.sweep(), Math.min(this.idleSessionMs, 60000));
	}

	get sessionCount(): number {
		return this.sessions.size;
	}

	async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
		if (this.options.loopbackOnly && !this.fromLoopbackName(req))
			return void sendError(
				res,
				forbidden("This server answers only requests addressed to a loopback name (Host and Origin)")
			);
		let meta: CallerMeta;
		try {
			meta = await this.backend.identify(req);
		} catch (err) {
			return void sendError(res, err);
		}
		const header = req.headers["mcp-session-id"];
		const sessionId = Array.isArray(header) ? header[0] : header;
		try {
			if (sessionId) await this.continueSession(sessionId, meta, req, res);
			else await this.openSession(meta, req, res);
		} catch (err) {
			// A refusal (unknown session, no room, Redis down); once the SDK has answered, its own.
			if (!res.headersSent) sendError(res, err);
		}
	}

	private async continueSession(
		sessionId: string,
		meta: CallerMeta,
		req: IncomingMessage,
		res: ServerResponse
	) {
		const session = this.sessions.get(sessionId) ?? (await this.resumeSession(sessionId, meta, req));
		// Another tenant's (or agent's) session is reported exactly like an unknown one.
		if (!session || callerKey(session.meta) !== callerKey(meta)) throw notFound("MCP session");
		session.meta = meta;
		session.lastSeen = this.clock.now();
		if (session.lastSeen - session.claimedAt > this.idleSessionMs / 4) {
			session.claimedAt = session.lastSeen;
			this.options.logs.claim(sessionId, callerKey(meta)).catch(() => undefined);
		}
		await session.transport.handleRequest(req, res);
		if (req.method === "DELETE") await this.options.logs.forget(sessionId);
	}

	private async openSession(meta: CallerMeta, req: IncomingMessage, res: ServerResponse) {
		const credential = credentialOf(req, meta);
		if (!this.makeRoom(credential)) throw rateLimited(1);
		this.opening.set(credential, (this.opening.get(credential) ?? 0) + 1);
		try {
			const { transport } = await this.newSession(randomUUID(), meta, credential);
			await transport.handleRequest(req, res);
		} finally {
			const left = this.opening.get(credential)! - 1;
			if (left > 0) this.opening.set(credential, left);
			else this.opening.delete(credential);
		}
	}

	/**
	 * A session this node does not hold, opened on another node for the same caller (its record and
	 * events are shared in Redis): this node takes it on, so a reconnect with `Last-Event-ID` may land
	 * anywhere. Concurrent requests for it share one resumption.
	 */
	private resumeSession(sessionId: string, meta: CallerMeta, req: IncomingMessage): Promise<Session | null> {
		let pending = this.resuming.get(sessionId);
		if (!pending) {
			pending = (async () => {
				if (!UUID.test(sessionId) || (await this.options.logs.ownerOf(sessionId)) !== callerKey(meta))
					return null;
				const credential = credentialOf(req, meta);
				if (!this.makeRoom(credential)) throw rateLimited(1);
				const { transport, register } = await this.newSession(sessionId, meta, credential);
				resumeTransport(transport, sessionId);
				await register();
				return this.sessions.get(sessionId) ?? null;
			})().finally(() => this.resuming.delete(sessionId));
			this.resuming.set(sessionId, pending);
		}
		return pending;
	}

	/** A transport and server for session `id`; registered once initialized (or resumed). */
	private async newSession(id: string, meta: CallerMeta, credential: string) {
		const register = async () => {
			const now = this.clock.now();
			this.sessions.set(id, { transport, server, meta, credential, lastSeen: now, claimedAt: now });
			await this.options.logs.claim(id, callerKey(meta));
		};
		const transport = new StreamableHTTPServerTransport({
			sessionIdGenerator: () => id,
			eventStore: this.options.logs.eventStore(id),
			retryInterval: this.options.sseRetryMs ?? 2000,
			onsessioninitialized: register
		});
		// Closed here (idle, evicted, shut down): the shared record stays, so another node may resume it.
		transport.onclose = () => void this.sessions.delete(id);
		const server = this.createServer(() => this.sessions.get(id)?.meta ?? meta);
		await server.connect(transport);
		return { transport, register };
	}

	/**
	 * Whether one more session fits, for this credential and in all: at a cap the longest-silent
	 * session (of that credential, or of anyone for the total) is closed if it has been silent long
	 * enough; otherwise there is no room and the caller is told to retry (429).
	 */
	private makeRoom(credential: string): boolean {
		const opening = [...this.opening.values()].reduce((sum, n) => sum + n, 0);
		const own = [...this.sessions.entries()].filter(([, session]) => session.credential === credential);
		if (
			own.length + (this.opening.get(credential) ?? 0) >= this.limits.maxSessionsPerCredential &&
			!this.evictIdlest(own)
		)
			return false;
		return (
			this.sessions.size + opening < this.limits.maxSessions || this.evictIdlest([...this.sessions.entries()])
		);
	}

	private evictIdlest(candidates: [string, Session][]): boolean {
		let idlest: [string, Session] | undefined;
		for (const entry of candidates) if (!idlest || entry[1].lastSeen < idlest[1].lastSeen) idlest = entry;
		if (!idlest || this.clock.now() - idlest[1].lastSeen < this.limits.evictIdleAfterMs) return false;
		this.sessions.delete(idlest[0]);
		idlest[1].transport.close().catch(() => undefined);
		return true;
	}

	/** Tells the sessions of a tenant (every session for a global tool) that their tool list changed. */
	toolsChanged(tenantId: string): void {
		for (const session of this.sessions.values())
			if (tenantId === GLOBAL_TENANT || session.meta.tenant_id === tenantId)
				session.server.sendToolListChanged().catch(() => undefined);
	}

	async close(): Promise<void> {
		this.clock.clear(this.sweeper);
		await Promise.all(
			[...this.sessions.values()].map(session => session.transport.close().catch(() => undefined))
		);
		this.sessions.clear();
	}

	private createServer(metaOf: () => CallerMeta): Server {
		const { index, ...taskOptions } = this.options.tasks;
		const taskStore = new QueueTaskStore(this.backend, index, metaOf, taskOptions);
		const server = new Server(
			{ name: "tool-registry", version: "1.0.0" },
			{
				capabilities: {
					tools: { listChanged: true },
					// The client picks a level; tool failures of its session are sent as log messages.
					logging: {},
					tasks: { list: {}, cancel: {}, requests: { tools: { call: {} } } }
				},
				// The SDK answers tasks/get, tasks/result, tasks/list and tasks/cancel from the store.
				taskStore,
				defaultTaskPollInterval: taskOptions.pollIntervalMs
			}
		);
		server.setRequestHandler(ListToolsRequestSchema, async request => {
			const offset = decodeCursor(request.params?.cursor);
			// The meta-tool leads the first page; registry tools follow by name.
			const page = await this.backend.listTools(metaOf(), offset, PAGE_SIZE).catch(err => {
				throw protocolError(err);
			});
			// A registry tool named like the meta-tool could never be called here: it is left out.
			const registryTools = page.tools
				.filter(tool => tool.name !== SEARCH_TOOLS.name)
				.map(tool => ({ ...tool, execution: QUEUEABLE }));
			const tools = offset === 0 ? [SEARCH_TOOLS, ...registryTools] : registryTools;
			return {
				tools,
				...(page.tools.length === PAGE_SIZE ? { nextCursor: encodeCursor(offset + PAGE_SIZE) } : {})
			};
		});
		server.setRequestHandler(CallToolRequestSchema, async (request, extra) => {
			const meta = metaOf();
			const { name, task } = request.params;
			const args = (request.params.arguments ?? {}) as JsonObject;
			if (name === SEARCH_TOOLS.name) {
				if (task)
					throw rpcError(
						ErrorCode.MethodNotFound,
						"search_tools does not run as a task (its execution.taskSupport is forbidden)"
					);
				if (!checkSearchArguments(args))
					throw protocolError(
						invalid("Invalid search_tools arguments", toProblems(checkSearchArguments.errors, "arguments"))
					);
				const found = await this.backend.searchTools(meta, args).catch(err => {
					throw protocolError(err);
				});
				return successResult(found);
			}
			if (!meta.scopes?.includes("tools:execute"))
				throw rpcError(ErrorCode.InvalidRequest, lacksScope("tools:execute").message);
			// Queued in the tenant's queue and answered at once; tasks/result brings the CallToolResult.
			if (task) return { task: await taskStore.createTask(task, extra.requestId, request, extra.sessionId) };
			const expectedHash = request.params._meta?.definition_hash;
			const execution = await this.backend
				.execute(meta, name, args, typeof expectedHash === "string" ? expectedHash : undefined)
				.catch(err => {
					throw protocolError(err);
				});
			const outputProblems = execution.output_problems as ValidationProblem[] | undefined;
			if (execution.status === "completed" && !outputProblems)
				return successResult((execution.result ?? {}) as JsonObject);
			// MCP clients check structuredContent against outputSchema, so a result that misses it
			// (passed through by a `warn` tool) is reported as an error rather than sent.
			const error = outputProblems
				? {
						type: "output_invalid",
						message: `the result does not match the tool's outputSchema: ${outputProblems.map(p => `${p.field} ${p.message}`).join("; ")}`
					}
				: (execution.error as { type: string; message: string });
			await server
				.sendLoggingMessage(
					{
						level: "warning",
						logger: "tool-registry",
						data: { tool: name, execution_id: execution.execution_id, error }
					},
					extra.sessionId
				)
				.catch(() => undefined);
			return errorResult(error);
		});
		return server;
	}

	private fromLoopbackName(req: IncomingMessage): boolean {
		const { host, origin } = req.headers;
		return (
			(host === undefined || namesLoopback(host, false)) &&
			(origin === undefined || namesLoopback(origin, true))
		);
	}

	private sweep(): void {
		const cutoff = this.clock.now() - this.idleSessionMs;
		for (const [id, session] of this.sessions)
			if (session.lastSeen < cutoff) {
				this.sessions.delete(id);
				session.transport.close().catch(() => undefined);
			}
	}
}
