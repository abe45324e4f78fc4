import type { IncomingHttpHeaders, IncomingMessage, Server, ServerResponse } from "http";
import type { Duplex } from "stream";
import type { Context, Service, ServiceSchema } from "moleculer";
import ApiGateway from "moleculer-web";
import { WebSocketServer } from "ws";
import { RedisMixin, type RedisLocals, type RedisSettings } from "../mixins/redis.mixin";
import { AuditMixin, type AuditLocals, type AuditMethods, type AuditSettings } from "../mixins/audit.mixin";
import { TaskSubmissionMixin } from "../mixins/task-submission.mixin";
import { ExecutionFailoverMixin } from "../mixins/execution-failover.mixin";
import { TenantScopeMixin } from "../mixins/tenant-scope.mixin";
import { ToolAccessMixin } from "../mixins/tool-access.mixin";
import { GLOBAL_TENANT, TENANT_ID_PATTERN } from "../lib/tenancy";
import { formatApiKey, matchesDigest, parseApiKey, sha256 } from "../lib/credentials";
import { bodyDecodingErrors, refuseUpgrade, sendError } from "../lib/error-response";
import { requireJsonBody, wrongMethod } from "../lib/http-checks";
import { guardJsonBody } from "../lib/json-guard";
import { McpGateway } from "../lib/mcp-gateway";
import { isLoopbackAddress } from "../lib/outbound/address-guard";
import { API_ROUTES, type RouteAlias } from "../lib/api-routes";
import { sendDocsAsset, sendDocsPage } from "../lib/docs-page";
import { sendConsole } from "../lib/console-page";
import { buildOpenApi, UPGRADE_ROUTES, type ServedRoute } from "../lib/openapi";
import { version as PACKAGE_VERSION } from "../package.json";
import { GatewayPrometheusReporter } from "../lib/metrics/gateway-prometheus-reporter";
import { badRequest, forbidden, lacksScope, notFound, rateLimited, unauthorized } from "../lib/errors";
import { newId, newSecret } from "../lib/ids";
import { MemoryRateLimiter, RedisRateLimiter, type RateLimiter } from "../lib/rate-limiter";
import type { KeyStore } from "../lib/store/key-store";
import { MemoryKeyStore } from "../lib/store/memory-key-store";
import { RedisKeyStore } from "../lib/store/redis-key-store";
import { DEFAULT_OUTBOX_MAX } from "../lib/outbox/outbox";
import { subscribeFrames } from "../lib/tasks/backend";
import { UiSockets } from "../lib/ui-sockets";
import { DependencyWatch } from "../lib/dependency-watch";
import { SCOPES, type ApiKeyRecord, type CallerMeta, type Scope, type StoredTool } from "../types/wire";
import { config } from "../lib/config";

export interface ApiSettings extends RedisSettings, AuditSettings {
	port: number;
	ip: string;
	/** Shared secret of trusted services; unset disables service-token authentication. */
	serviceToken?: string;
	/** Requests per tenant per window across all gateway nodes; 0 disables the limit. */
	tenantRateLimit: number;
	/** MCP sessions: caps per credential and in all, and how long a session must be silent to be closed for room. */
	mcpSessions: { maxSessionsPerCredential: number; maxSessions: number; evictIdleAfterMs: number };
	tenantRateWindowMs: number;
	/** UI WebSocket (`GET /ws`): ping interval, and bytes queued per client before it is dropped. */
	uiHeartbeatMs: number;
	uiMaxBufferedBytes: number;
	routes: unknown[];
	/** moleculer-web options set below. */
	$secureSettings?: string[];
	log4XXResponses?: boolean;
	logRequest?: string | null;
	logResponse?: string | null;
	onError?: unknown;
}

interface ApiMethods extends AuditMethods {
	authenticate(ctx: Context<unknown, CallerMeta>, route: unknown, req: GatewayRequest): Promise<null>;
	admit(tenantId: string): Promise<void>;
	authorize(ctx: Context<unknown, CallerMeta>, route: unknown, req: GatewayRequest): void;
	identify(req: Pick<IncomingMessage, "headers">): Promise<CallerMeta>;
	noteKeyUse(record: ApiKeyRecord): void;
	acceptUiSocket(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void>;
}

interface ApiLocals extends RedisLocals, AuditLocals {
	/** Every alias moleculer-web registered, over all routes. */
	aliases: { method: string; fullPath: string; scope?: string }[];
	keyStore: KeyStore;
	/** When this node last wrote each key's `last_used_at`. */
	keyUseWritten: Map<string, number>;
	/** SHA-256 of SERVICE_TOKEN, computed once: every request compares against it. */
	serviceTokenDigest: Buffer | null;
	rateLimiter: RateLimiter | null;
	/** The Model Context Protocol server at /mcp. */
	mcp: McpGateway;
	/** moleculer-web's HTTP server. */
	server: Server;
	uiServer: WebSocketServer;
	uiSockets: UiSockets;
	/** Redis and the transporter as this node sees them: what readiness reports and requests need. */
	reachable: DependencyWatch;
	/** Stops the feed of recorded task frames to UI clients. */
	stopTaskFrames: () => Promise<void>;
}

type ApiThis = Service<ApiSettings> & ApiMethods & ApiLocals;

interface GatewayRequest extends IncomingMessage {
	/** The URL as received; moleculer-web makes `url` relative to the route. */
	originalUrl?: string;
	$alias?: RouteAlias;
	$ctx?: Context<unknown, CallerMeta>;
}

const DEBUG_LOGGING = ["debug", "trace"].includes(config().logLevel);

/** `last_used_at` is exact to this much: writing it on every request would cost a Redis write each. */
const KEY_USE_RESOLUTION_MS = 60000;

/** Every scope: what the service token grants. Shared, so no request copies it. */
const ALL_SCOPES: readonly Scope[] = Object.freeze([...SCOPES]);

const pathOf = (url: string | undefined) => (url ?? "/").split("?")[0];

const header = (req: Pick<IncomingMessage, "headers">, name: string): string | undefined => {
	const value = req.headers[name];
	return Array.isArray(value) ? value[0] : value;
};

/** Moleculer tool events and the UI frame event each becomes; other `tool.*` events stay internal. */
const TOOL_FRAMES: Record<string, string> = {
	"tool.registered": "tool_registered",
	"tool.updated": "tool_updated",
	"tool.deleted": "tool_deleted",
	"tool.validation_completed": "tool_validation_completed"
};

/**
 * Subprotocol the console offers on `/ws`. Browsers cannot set headers on a WebSocket, so it sends
 * its credential and tenant as further offered subprotocols (`tool-registry.bearer.<base64url>`,
 * `tool-registry.tenant.<base64url>`), which keeps them out of the URL and so out of access logs.
 */
const UI_PROTOCOL = "tool-registry";

const offeredProtocol = (req: IncomingMessage, kind: "bearer" | "tenant"): string | null => {
	const prefix = `${UI_PROTOCOL}.${kind}.`;
	const offered = (header(req, "sec-websocket-protocol") ?? "").split(",").map(p => p.trim());
	const value = offered.find(p => p.startsWith(prefix))?.slice(prefix.length);
	return value ? Buffer.from(value, "base64url").toString("utf8") : null;
};

/** The credential and tenant of a WebSocket upgrade: headers, else subprotocols, else the query. */
const uiSocketHeaders = (req: IncomingMessage, url: URL): IncomingHttpHeaders => {
	const headers = { ...req.headers };
	const token = offeredProtocol(req, "bearer") ?? url.searchParams.get("token");
	const tenant = offeredProtocol(req, "tenant") ?? url.searchParams.get("tenant_id");
	if (!headers.authorization && token) headers.authorization = `Bearer ${token}`;
	if (!headers["x-tenant-id"] && tenant) headers["x-tenant-id"] = tenant;
	return headers;
};

/** moleculer-web calls alias functions with the service as `this` and the raw request and response. */
function serveMcp(this: ApiThis, req: IncomingMessage, res: ServerResponse) {
	return this.mcp.handle(req, res);
}

/** `GET /metrics`: the Prometheus text of this node, behind the service token when one is set. */
function serveMetrics(this: ApiThis, req: IncomingMessage, res: ServerResponse) {
	const reporter = this.broker.metrics.reporter?.find(r => r instanceof GatewayPrometheusReporter) as
		GatewayPrometheusReporter | undefined;
	if (!reporter) return void sendError(res, notFound("Metrics"));
	reporter.serve(req, res, this.serviceTokenDigest);
}

/** `GET /openapi.json`: generated from the routes this gateway serves and the actions' params. */
function serveOpenApi(this: ApiThis, _req: IncomingMessage, res: ServerResponse) {
	const served: ServedRoute[] = this.aliases.map(a => ({
		method: a.method,
		fullPath: a.fullPath,
		alias: a.scope ? (a as unknown as RouteAlias) : undefined
	}));
	const actions = new Map(this.broker.registry.getActionList({}).map(item => [item.name, item.action]));
	const document = buildOpenApi(
		[...served, ...UPGRADE_ROUTES],
		action => (actions.get(action) as { params?: Record<string, unknown> } | undefined)?.params,
		PACKAGE_VERSION
	);
	res.writeHead(200, { "Content-Type": "application/json; charset=utf-8" });
	res.end(JSON.stringify(document));
}

/** `GET /ui`: the web console, a static bundle under a strict Content-Security-Policy. */
function serveConsole(
	this: ApiThis,
	req: IncomingMessage & { $params?: { file?: string; asset?: string } },
	res: ServerResponse
) {
	const { file, asset } = req.$params ?? {};
	if (!sendConsole(asset !== undefined ? `assets/${asset}` : file, res))
		sendError(res, notFound("File", file ?? asset));
}

function serveDocs(
	this: ApiThis,
	req: IncomingMessage & { $params?: { file?: string } },
	res: ServerResponse
) {
	const file = req.$params?.file;
	if (file === undefined) return sendDocsPage(res);
	if (!sendDocsAsset(file, res)) sendError(res, notFound("File", file));
}

/** The REST gateway: authenticates, maps routes to actions and renders errors. No business logic. */
const ApiService: ServiceSchema<ApiSettings, ApiMethods, ApiLocals, ApiThis> = {
	name: "api",
	// Moleculer runs mixins' `created` from the last listed to the first: Redis is ready for the others.
	// Tasks are queued here, not by an executor: a submission is durable even when no executor is up.
	mixins: [
		ApiGateway as unknown as Partial<ServiceSchema>,
		TaskSubmissionMixin({ actionPrefix: "tasks." }),
		ExecutionFailoverMixin(),
		ToolAccessMixin(),
		TenantScopeMixin(),
		AuditMixin(),
		RedisMixin()
	],

	settings: {
		port: config().port,
		ip: config().host,
		serviceToken: config().serviceToken,
		// Not moleculer-web's `rateLimit`: that one counts per IP before the tenant is known.
		tenantRateLimit: config().rateLimit,
		mcpSessions: {
			maxSessionsPerCredential: config().mcpMaxSessionsPerCredential,
			maxSessions: config().mcpMaxSessions,
			evictIdleAfterMs: 60_000
		},
		tenantRateWindowMs: config().rateLimitWindowMs,
		uiHeartbeatMs: 30000,
		uiMaxBufferedBytes: 1024 * 1024,
		$secureSettings: ["serviceToken"],
		log4XXResponses: false,
		// moleculer-web builds (and colours) these lines on every request even when their level is off.
		logRequest: DEBUG_LOGGING ? "debug" : null,
		logResponse: DEBUG_LOGGING ? "debug" : null,

		routes: [
			{
				path: "/health",
				mappingPolicy: "restrict",
				bodyParsers: { json: false },
				aliases: { "GET /": "api.health", "GET /ready": "api.ready" }
			},
			{
				path: "/",
				mappingPolicy: "restrict",
				bodyParsers: false,
				aliases: {
					"GET /openapi.json": serveOpenApi,
					"GET /docs": serveDocs,
					"GET /docs/:file": serveDocs,
					"GET /ui": serveConsole,
					"GET /ui/:file": serveConsole,
					"GET /ui/assets/:asset": serveConsole
				}
			},
			{
				path: "/metrics",
				mappingPolicy: "restrict",
				bodyParsers: false,
				aliases: { "GET /": serveMetrics }
			},
			{
				// MCP Streamable HTTP: the SDK transport reads the body and authenticates per request itself.
				path: "/mcp",
				mappingPolicy: "restrict",
				bodyParsers: false,
				aliases: { "POST /": serveMcp, "GET /": serveMcp, "DELETE /": serveMcp }
			},
			{
				path: "/api/v1",
				// The default "all" policy would expose every action, including `$node.*`.
				mappingPolicy: "restrict",
				authentication: true,
				authorization: true,
				bodyParsers: {
					// `__proto__` keys and deep nesting are refused before parsing (lib/json-guard.ts).
					json: { limit: "1mb", strict: true, verify: guardJsonBody }
				},
				use: [bodyDecodingErrors, requireJsonBody],
				aliases: API_ROUTES,
				onAfterCall(
					this: ApiThis,
					ctx: Context,
					_route: unknown,
					req: GatewayRequest,
					_res: unknown,
					data: unknown
				) {
					const meta = ctx.meta as Record<string, unknown>;
					// An action may answer otherwise than its route's usual status (a dry run stores nothing).
					if (req.$alias?.status) meta.$statusCode ??= req.$alias.status;
					if (req.$alias?.location && meta.$statusCode === req.$alias.status)
						meta.$location = req.$alias.location(data as Record<string, string>);
					return data;
				}
			}
		],

		onError(this: ApiThis, req: GatewayRequest, res: ServerResponse, err: Error) {
			// No alias took the request: a known path asked with another method is a 405.
			const refused =
				(err instanceof ApiGateway.Errors.NotFoundError && wrongMethod(this.aliases, req.originalUrl)) || err;
			const body = sendError(res, refused);
			// The path only: a query may carry a credential.
			if (body.type === "INTERNAL_ERROR") this.logger.error("Request failed", pathOf(req.url), err);
		}
	} as ApiSettings,

	actions: {
		health: {
			handler() {
				return { status: "ok" };
			}
		},

		ready: {
			handler(this: ApiThis, ctx: Context) {
				const checks = this.reachable.checks();
				const failed = Object.keys(checks).filter(name => checks[name] !== "ok");
				if (failed.length) (ctx.meta as Record<string, unknown>).$statusCode = 503;
				return { status: failed.length ? "unavailable" : "ready", checks, failed };
			}
		},

		"keys.create": {
			params: {
				$$strict: true,
				tenant_id: { type: "string", pattern: TENANT_ID_PATTERN },
				scopes: { type: "array", items: { type: "enum", values: SCOPES }, min: 1, unique: true },
				agent_id: { type: "string", min: 1, max: 128, optional: true },
				name: { type: "string", max: 128, optional: true }
			},
			async handler(
				this: ApiThis,
				ctx: Context<{ tenant_id: string; scopes: Scope[]; agent_id?: string; name?: string }, CallerMeta>
			) {
				const { tenant_id, scopes, agent_id, name } = ctx.params;
				if (tenant_id === GLOBAL_TENANT)
					throw badRequest("Keys cannot act for the global tenant", "INVALID_TENANT");
				if (ctx.meta.auth === "api_key") {
					if (tenant_id !== ctx.meta.tenant_id)
						throw forbidden("A key may only create keys of its own tenant");
					const missing = scopes.filter(scope => !ctx.meta.scopes?.includes(scope));
					if (missing.length)
						throw forbidden("A key cannot grant scopes it does not have", { scopes: missing });
					// A key bound to an agent mints keys of that agent only: never a wider one.
					const caller = ctx.meta.key_id ? await this.keyStore.get(ctx.meta.key_id) : null;
					if (caller?.agent_id && agent_id !== caller.agent_id)
						throw forbidden("A key bound to an agent may only create keys bound to the same agent", {
							agent_id: caller.agent_id
						});
				}
				const secret = newSecret();
				const record: ApiKeyRecord = {
					key_id: newId(),
					tenant_id,
					agent_id: agent_id ?? null,
					name: name ?? null,
					scopes,
					secret_hash: sha256(secret).toString("hex"),
					created_at: new Date().toISOString(),
					revoked_at: null
				};
				await this.keyStore.create(record);
				await this.recordAudit(
					this.auditDraft(ctx, tenant_id, "key.create", `key:${record.key_id}`, "success", {
						details: { scopes, agent_id: record.agent_id, name: record.name }
					})
				);
				const { secret_hash: _hidden, ...shown } = record;
				return { ...shown, api_key: formatApiKey(record.key_id, secret) };
			}
		},

		"keys.list": {
			params: {},
			async handler(this: ApiThis, ctx: Context<object, CallerMeta>) {
				const records = await this.keyStore.list(ctx.meta.tenant_id!);
				return {
					items: records.map(({ secret_hash: _hidden, ...shown }) => shown)
				};
			}
		},

		"keys.revoke": {
			params: { key_id: { type: "string", max: 64 } },
			async handler(this: ApiThis, ctx: Context<{ key_id: string }, CallerMeta>) {
				const record = await this.keyStore.get(ctx.params.key_id);
				const sameTenant = record && (ctx.meta.auth !== "api_key" || record.tenant_id === ctx.meta.tenant_id);
				if (!record || !sameTenant) throw notFound("API key", ctx.params.key_id);
				await this.keyStore.revoke(record.key_id, new Date().toISOString());
				await this.recordAudit(
					this.auditDraft(ctx, record.tenant_id, "key.revoke", `key:${record.key_id}`, "success")
				);
				return null;
			}
		}
	},

	events: {
		// Broadcast by the registry: every gateway node forwards them to its own UI clients.
		"tool.*"(this: ApiThis, ctx: Context<{ tenant_id: string; tool: StoredTool }>) {
			const event = ctx.eventName && TOOL_FRAMES[ctx.eventName];
			if (!event) return;
			const { tenant_id, tool } = ctx.params;
			this.mcp.toolsChanged(tenant_id);
			const timestamp = new Date().toISOString();
			this.uiSockets.publish(tenant_id, { event, tenant_id, timestamp, data: { tool } });
		}
	},

	methods: {
		async authenticate(this: ApiThis, ctx, _route, req) {
			Object.assign(ctx.meta, await this.identify(req));
			this.reachable.require(req.$alias?.action);
			await this.admit(ctx.meta.tenant_id!);
			return null;
		},

		/** The per-tenant rate limit, shared by REST, MCP and WebSocket upgrades. */
		async admit(this: ApiThis, tenantId: string) {
			if (!this.rateLimiter) return;
			const decision = await this.rateLimiter.hit(tenantId);
			if (!decision.allowed) throw rateLimited(decision.retryAfter);
		},

		authorize(this: ApiThis, ctx, _route, req) {
			const alias = req.$alias;
			const scope = alias?.scopeFor ? alias.scopeFor((req as { body?: unknown }).body) : alias?.scope;
			if (!scope || !ctx.meta.scopes?.includes(scope)) throw lacksScope(scope ?? "unknown");
		},

		/** Resolves the credential to an identity: service token + headers, or an API key. */
		async identify(this: ApiThis, req): Promise<CallerMeta> {
			// Every credential is checked against Redis (keys, rate limit): without it, 503 at once.
			this.reachable.require();
			const authorization = header(req, "authorization") ?? "";
			const credential = /^Bearer\s+(\S+)$/i.exec(authorization)?.[1];
			if (!credential) throw unauthorized("Missing Bearer credential");
			const tenantHeader = header(req, "x-tenant-id");
			const agentHeader = header(req, "x-agent-id") || null;
			if (agentHeader !== null && agentHeader.length > 128)
				throw badRequest("X-Agent-ID is too long", "INVALID_AGENT");

			if (this.serviceTokenDigest && matchesDigest(credential, this.serviceTokenDigest)) {
				if (!tenantHeader)
					throw badRequest("X-Tenant-ID is required with the service token", "TENANT_REQUIRED");
				if (!TENANT_ID_PATTERN.test(tenantHeader))
					throw badRequest("X-Tenant-ID is invalid", "INVALID_TENANT");
				return { tenant_id: tenantHeader, agent_id: agentHeader, scopes: ALL_SCOPES, auth: "service_token" };
			}

			const parsed = parseApiKey(credential);
			const record = parsed && (await this.keyStore.get(parsed.keyId));
			if (
				!parsed ||
				!record ||
				!matchesDigest(parsed.secret, Buffer.from(record.secret_hash, "hex")) ||
				record.revoked_at
			)
				throw unauthorized("Unknown or revoked credential");
			if (tenantHeader && tenantHeader !== record.tenant_id)
				throw forbidden("This key does not act for the requested tenant");
			if (record.agent_id && agentHeader && agentHeader !== record.agent_id)
				throw forbidden("This key is bound to another agent");
			this.noteKeyUse(record);
			return {
				tenant_id: record.tenant_id,
				agent_id: record.agent_id ?? agentHeader,
				scopes: record.scopes,
				auth: "api_key",
				key_id: record.key_id
			};
		},

		/** Records a key's last use, at most once a minute per key and node: a request never waits for it. */
		noteKeyUse(this: ApiThis, record: ApiKeyRecord) {
			const now = Date.now();
			if (now - (this.keyUseWritten.get(record.key_id) ?? 0) < KEY_USE_RESOLUTION_MS) return;
			if (this.keyUseWritten.size >= 10000) this.keyUseWritten.clear();
			this.keyUseWritten.set(record.key_id, now);
			this.keyStore
				.touch(record.tenant_id, record.key_id, new Date(now).toISOString())
				.catch((err: unknown) => this.logger.warn("Recording an API key's use failed", err));
		},

		/** `GET /ws`: authenticated at upgrade, so a refused client never gets a socket. */
		async acceptUiSocket(this: ApiThis, req, socket, head) {
			// A client that drops while it is being authenticated must not raise an unhandled error.
			const dropped = () => socket.destroy();
			socket.on("error", dropped);
			try {
				const url = new URL(req.url ?? "/", "http://gateway");
				if (url.pathname !== "/ws")
					return void refuseUpgrade(socket, notFound("WebSocket endpoint", url.pathname));
				// The same checks, in the same order, as `authenticate` and `authorize` on a REST route.
				const identity = await this.identify({ headers: uiSocketHeaders(req, url) });
				await this.admit(identity.tenant_id!);
				if (!identity.scopes?.includes("tools:read")) throw lacksScope("tools:read");
				// From here ws owns the socket and its errors.
				socket.off("error", dropped);
				this.uiServer.handleUpgrade(req, socket, head, ws => this.uiSockets.add(identity.tenant_id!, ws));
			} catch (err) {
				const body = refuseUpgrade(socket, err);
				// The path only: `?token=` carries the credential. A dependency's outage is logged once by its watch.
				if (body.type === "INTERNAL_ERROR")
					this.logger.error("WebSocket upgrade failed", pathOf(req.url), err);
			}
		}
	},

	created(this: ApiThis) {
		const { redis, settings } = this;
		this.serviceTokenDigest = settings.serviceToken ? sha256(settings.serviceToken) : null;
		this.reachable = new DependencyWatch(this.broker, redis, this.logger);
		this.keyStore = redis ? new RedisKeyStore(redis, settings.redisPrefix) : new MemoryKeyStore();
		this.keyUseWritten = new Map();
		this.rateLimiter =
			settings.tenantRateLimit > 0
				? redis
					? new RedisRateLimiter(
							redis,
							settings.redisPrefix,
							settings.tenantRateLimit,
							settings.tenantRateWindowMs
						)
					: new MemoryRateLimiter(settings.tenantRateLimit, settings.tenantRateWindowMs)
				: null;
		this.mcp = new McpGateway(
			{
				identify: async req => {
					const meta = await this.identify(req);
					await this.admit(meta.tenant_id!);
					return meta;
				},
				listTools: (meta, offset, limit) => {
					this.reachable.require("registry.discover");
					return this.broker.call("registry.discover", { format: "mcp", limit, offset }, { meta });
				},
				searchTools: (meta, query) => {
					this.reachable.require("registry.discover");
					return this.broker.call("registry.discover", { limit: 5, ...query, format: "mcp" }, { meta });
				},
				// This gateway's own `tools.execute`, which fails over when an executor node is lost.
				execute: (meta, name, parameters, expectedHash) =>
					this.broker.call(
						"api.tools.execute",
						{ tool_name: name, parameters, ...(expectedHash ? { expected_hash: expectedHash } : {}) },
						{ meta, nodeID: this.broker.nodeID }
					)
			},
			{ loopbackOnly: isLoopbackAddress(settings.ip), ...settings.mcpSessions }
		);
		this.uiSockets = new UiSockets({
			maxBufferedBytes: settings.uiMaxBufferedBytes,
			heartbeatMs: settings.uiHeartbeatMs,
			closeGraceMs: 1000
		});
		// UiSockets tracks the clients, so ws need not keep its own set.
		this.uiServer = new WebSocketServer({
			noServer: true,
			clientTracking: false,
			maxPayload: 64 * 1024,
			// Never echo the credential-carrying subprotocols; a client offering none gets none.
			handleProtocols: offered => (offered.has(UI_PROTOCOL) ? UI_PROTOCOL : false)
		});
	},

	async started(this: ApiThis) {
		this.reachable.start();
		// Upgrades never reach moleculer-web's routes: every upgrade request is answered here.
		this.server.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) => {
			void this.acceptUiSocket(req, socket, head);
		});
		// Task frames as the queue records them (from Redis, not the transporter, so a transporter outage
		// loses none); most have no UI client to go to, and are not even parsed then.
		const backend = {
			redis: this.redis,
			redisPrefix: this.settings.redisPrefix,
			outboxMax: DEFAULT_OUTBOX_MAX
		};
		this.stopTaskFrames = await subscribeFrames(this.broker, backend, text => {
			if (this.uiSockets.size === 0) return;
			const frame = JSON.parse(text) as { tenant_id: string };
			this.uiSockets.publish(frame.tenant_id, frame);
		});
	},

	// Runs before moleculer-web's `stopped`, whose server.close() would wait for open sockets.
	async stopped(this: ApiThis) {
		this.reachable.stop();
		await this.stopTaskFrames?.();
		this.uiServer.close();
		await Promise.all([this.uiSockets.close(), this.mcp.close()]);
	}
};

export default ApiService;
