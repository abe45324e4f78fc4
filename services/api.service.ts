import type { IncomingMessage, RequestListener, Server, ServerResponse } from "http";
import type { Duplex } from "stream";
import type { CallingOptions, Context, Service, ServiceSchema } from "moleculer";
import ApiGateway, {
	type Alias,
	type ApiSettingsSchema,
	type GatewayResponse,
	type IncomingRequest,
	type Route
} from "moleculer-web";
import { WebSocketServer } from "ws";
import { RedisMixin, type RedisLocals, type RedisSettings } from "../mixins/redis.mixin";
import { AuditMixin, type AuditLocals, type AuditSettings } from "../mixins/audit.mixin";
import { McpServerMixin, type McpServerLocals, type McpServerSettings } from "../mixins/mcp-server.mixin";
import { TaskSubmissionMixin, type TaskSubmissionSettings } from "../mixins/task-submission.mixin";
import { ExecutionFailoverMixin } from "../mixins/execution-failover.mixin";
import { TenantScopeMixin } from "../mixins/tenant-scope.mixin";
import { ToolAccessMixin } from "../mixins/tool-access.mixin";
import { createGatewayServer } from "../lib/gateway-server";
import { bodyDecodingErrors, refuseOnSocket, sendError } from "../lib/error-response";
import { GatewayAuth } from "../lib/gateway-auth";
import { requireJsonBody, wrongMethod } from "../lib/http-checks";
import { guardJsonBody } from "../lib/json-guard";
import { API_ROUTES, type RouteAlias } from "../lib/api-routes";
import { serveDocs } from "../lib/docs-page";
import { serveConsole } from "../lib/console-page";
import { buildOpenApi, UPGRADE_ROUTES, type ServedRoute } from "../lib/openapi";
import { version as PACKAGE_VERSION } from "../package.json";
import { GatewayPrometheusReporter } from "../lib/metrics/gateway-prometheus-reporter";
import { notFound } from "../lib/errors";
import { MemoryRateLimiter, RedisRateLimiter, type RateLimiter } from "../lib/rate-limiter";
import { keyStoreFor } from "../lib/store/key-backend";
import { DEFAULT_OUTBOX_MAX } from "../lib/outbox/outbox";
import { frameFeed, type FrameFeed } from "../lib/tasks/backend";
import { UiSockets } from "../lib/ui-sockets";
import { DependencyWatch, readiness } from "../lib/dependency-watch";
import { UI_PROTOCOL, uiSocketHeaders } from "../lib/ui-upgrade";
import type { CallerMeta, StoredTool } from "../types/wire";
import { config } from "../lib/config";
import type { ClockTimer } from "../lib/clock";

/** The gateway's own settings, and the moleculer-web settings it sets (typed by moleculer-web). */
interface GatewaySettings extends Pick<
	ApiSettingsSchema,
	"routes" | "log4XXResponses" | "logRequest" | "logResponse" | "logRequestParams" | "onError"
> {
	/** Milliseconds a request's headers and body have to arrive. */
	requestTimeout: number;
	/** moleculer-web calls it for every request's root call (its types know only the object form). */
	rootCallOptions: typeof rootCallOptions;
	port: number;
	ip: string;
	/** Shared secret of trusted services; unset disables service-token authentication. */
	serviceToken?: string;
	/** Requests per tenant per window across all gateway nodes; 0 disables the limit. */
	tenantRateLimit: number;
	tenantRateWindowMs: number;
	/** UI WebSocket (`GET /ws`): ping interval, and bytes queued per client before it is dropped. */
	uiHeartbeatMs: number;
	uiMaxBufferedBytes: number;
	$secureSettings: string[];
}

/** `clock` (the task submission mixin's) also times the UI WebSocket heartbeat. */
export type ApiSettings = GatewaySettings &
	RedisSettings &
	AuditSettings &
	McpServerSettings &
	Pick<TaskSubmissionSettings, "clock">;

interface ApiMethods {
	authenticate(ctx: Context<unknown, CallerMeta>, route: Route, req: ApiRequest): Promise<null>;
	authorize(ctx: Context<unknown, CallerMeta>, route: Route, req: ApiRequest): void;
	acceptUiSocket(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void>;
	feedUi(): Promise<void>;
}

interface ApiLocals extends RedisLocals, AuditLocals, McpServerLocals {
	/** Every alias moleculer-web registered, over all routes. */
	aliases: (Pick<Alias, "method"> & { fullPath: string } & Partial<RouteAlias>)[];
	/** identify → rate limit → scope, for REST, `/mcp` and `/ws` alike. */
	auth: GatewayAuth;
	/** The HTTP server (createServer), moleculer-web's request handler, and its scheme flag. */
	server: Server;
	httpHandler: RequestListener;
	isHTTPS: boolean;
	uiServer: WebSocketServer;
	uiSockets: UiSockets;
	/** Redis and the transporter as this node sees them: what readiness reports and requests need. */
	reachable: DependencyWatch;
	/** Recorded task frames for UI clients: fed only while a client is connected or being admitted. */
	taskFrames: FrameFeed;
	/** UI upgrades admitted whose socket is not open yet. */
	uiAdmitting: number;
}

type ApiThis = Service<ApiSettings> & ApiMethods & ApiLocals;

/** A request on an `/api/v1` route: moleculer-web copies the route table's fields onto its alias. */
type ApiRequest = IncomingRequest & { $alias?: Alias & Partial<RouteAlias>; body?: unknown };

/** Longest a UI socket's upgrade waits for the node's frame feed to start (longer only while Redis is away). */
const UI_FEED_WAIT_MS = 1000;

const DEBUG_LOGGING = ["debug", "trace"].includes(config().logLevel);

const pathOf = (url: string | undefined) => (url ?? "/").split("?")[0];

/** Moleculer tool events and the UI frame event each becomes; other `tool.*` events stay internal. */
const TOOL_FRAMES: Record<string, string> = {
	"tool.registered": "tool_registered",
	"tool.updated": "tool_updated",
	"tool.deleted": "tool_deleted",
	"tool.validation_completed": "tool_validation_completed"
};

/**
 * moleculer-web calls alias functions with the service as `this` and the raw request and response,
 * and ignores what they return: a failure must be answered here.
 */
function serveMcp(this: ApiThis, req: IncomingRequest, res: GatewayResponse): void {
	this.mcp.handle(req, res).catch((err: unknown) => {
		if (sendError(res, err).code >= 500) this.logger.error("MCP request failed", err);
	});
}

/** `GET /metrics`: the Prometheus text of this node, behind the service token when one is set. */
function serveMetrics(this: ApiThis, req: IncomingRequest, res: GatewayResponse) {
	const reporter = this.broker.metrics.reporter?.find(r => r instanceof GatewayPrometheusReporter) as
		GatewayPrometheusReporter | undefined;
	if (!reporter) return void sendError(res, notFound("Metrics"));
	reporter.serve(req, res, this.auth.serviceTokenDigest);
}

/** Aliases of `/api/v1` carry their route table entry: a scope is what every entry has. */
const fromRouteTable = (alias: Partial<RouteAlias>): alias is RouteAlias => alias.scope !== undefined;

/** `GET /`: a browser lands on the console; any other client reads where everything is. */
function serveIndex(_req: IncomingRequest, res: GatewayResponse) {
	res.writeHead(302, { Location: "/ui", "Content-Type": "application/json; charset=utf-8" });
	res.end(
		JSON.stringify({ ui: "/ui", docs: "/docs", openapi: "/openapi.json", health: "/health", api: "/api/v1" })
	);
}

/** `GET /openapi.json`: generated from the routes this gateway serves and the actions' params. */
function serveOpenApi(this: ApiThis, _req: IncomingRequest, res: GatewayResponse) {
	const served: ServedRoute[] = this.aliases.map(a => ({
		method: a.method,
		fullPath: a.fullPath,
		alias: fromRouteTable(a) ? a : undefined
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

/**
 * The options of each request's root call. A standalone MCP stream (`GET /mcp`) lives until the
 * client or the gateway closes it: tracked, it would hold a graceful stop for the whole shutdown
 * timeout, while in-flight requests stay tracked and are drained. While the node stops, every answer
 * closes its connection, so keep-alive clients move to another gateway.
 */
function rootCallOptions(this: ApiThis, options: CallingOptions, req: IncomingMessage, res: ServerResponse) {
	if (req.method === "GET" && pathOf(req.url) === "/mcp") options.tracking = false;
	if (this.broker.stopping) res.setHeader("Connection", "close");
}

/** The REST gateway: authenticates, maps routes to actions and renders errors. No business logic. */
const ApiService: ServiceSchema<GatewaySettings, ApiMethods, ApiLocals, ApiThis> = {
	name: "api",
	// Moleculer runs mixins' `created` from the last listed to the first: Redis is ready for the others.
	// Tasks are queued here, not by an executor: a submission is durable even when no executor is up.
	mixins: [
		ApiGateway,
		McpServerMixin(),
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
		tenantRateWindowMs: config().rateLimitWindowMs,
		// moleculer-web's; the server applies it (createServer).
		requestTimeout: config().requestTimeoutMs,
		uiHeartbeatMs: 30000,
		uiMaxBufferedBytes: 1024 * 1024,
		$secureSettings: ["serviceToken"],
		log4XXResponses: false,
		rootCallOptions,
		// moleculer-web builds (and colours) these lines on every request even when their level is off.
		logRequest: DEBUG_LOGGING ? "debug" : null,
		logResponse: DEBUG_LOGGING ? "debug" : null,
		// moleculer-web would log every request's params at debug: tool configs and source headers hold secrets.
		logRequestParams: null,

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
					"GET /": serveIndex,
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
					_route: Route,
					req: ApiRequest,
					_res: GatewayResponse,
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

		onError(this: ApiThis, req: IncomingRequest, res: ServerResponse, err: Error) {
			// No alias took the request: a known path asked with another method is a 405.
			const refused =
				(err instanceof ApiGateway.Errors.NotFoundError && wrongMethod(this.aliases, req.originalUrl)) || err;
			const body = sendError(res, refused);
			// The path only: a query may carry a credential.
			if (body.type === "INTERNAL_ERROR") this.logger.error("Request failed", pathOf(req.url), err);
		}
	},

	actions: {
		health: {
			handler() {
				return { status: "ok" };
			}
		},

		ready: {
			handler(this: ApiThis, ctx: Context) {
				const answer = readiness(this.reachable.checks());
				if (answer.failed.length) (ctx.meta as Record<string, unknown>).$statusCode = 503;
				return answer;
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
		/** Replaces moleculer-web's method: the gateway's server is lib/gateway-server.ts's. */
		createServer(this: ApiThis) {
			this.server = createGatewayServer(this.httpHandler, this.settings.requestTimeout);
			this.isHTTPS = false;
		},

		async authenticate(this: ApiThis, ctx, _route, req) {
			Object.assign(ctx.meta, await this.auth.admit(req.headers));
			// With the transporter down, an action only other nodes serve answers 503 at once.
			this.reachable.require(req.$alias?.action);
			return null;
		},

		/** After authentication and the body parsers: a task's scope depends on its body's `type`. */
		authorize(this: ApiThis, ctx, _route, req) {
			const alias = req.$alias;
			this.auth.requireScope(ctx.meta, alias?.scopeFor ? alias.scopeFor(req.body) : alias?.scope);
		},

		/**
		 * Feeds task frames to this node while UI clients are connected or being admitted; a failure is
		 * logged, and the feed follows again once Redis is back.
		 */
		feedUi(this: ApiThis) {
			return this.taskFrames
				.listen(this.uiSockets.size + this.uiAdmitting > 0)
				.catch(err => this.logger.warn("Starting or stopping the UI's task frames failed", err));
		},

		/** `GET /ws`: authenticated at upgrade, so a refused client never gets a socket. */
		async acceptUiSocket(this: ApiThis, req, socket, head) {
			// A client that drops while it is being authenticated must not raise an unhandled error.
			const dropped = () => socket.destroy();
			socket.on("error", dropped);
			try {
				const url = new URL(req.url ?? "/", "http://gateway");
				if (url.pathname !== "/ws")
					return void refuseOnSocket(socket, notFound("WebSocket endpoint", url.pathname));
				const identity = await this.auth.admit(uiSocketHeaders(req, url), "tools:read");
				// Fed before the socket opens, so the client misses no frame recorded after it; bounded,
				// since with Redis away the feed starts only once it is back.
				this.uiAdmitting++;
				try {
					const { clock } = this.settings;
					let bound: ClockTimer | undefined;
					await Promise.race([
						this.feedUi(),
						new Promise<void>(resolve => (bound = clock.setTimeout(resolve, UI_FEED_WAIT_MS)))
					]);
					clock.clear(bound!);
					// From here ws owns the socket and its errors.
					socket.off("error", dropped);
					this.uiServer.handleUpgrade(req, socket, head, ws => this.uiSockets.add(identity.tenant_id!, ws));
				} finally {
					// ws adds the client at once, or refuses the handshake without one.
					this.uiAdmitting--;
					void this.feedUi();
				}
			} catch (err) {
				const body = refuseOnSocket(socket, err);
				// The path only: `?token=` carries the credential. A dependency's outage is logged once by its watch.
				if (body.type === "INTERNAL_ERROR")
					this.logger.error("WebSocket upgrade failed", pathOf(req.url), err);
			}
		}
	},

	created(this: ApiThis) {
		const { redis, settings } = this;
		this.reachable = new DependencyWatch(this.broker, redis, this.logger);
		const limit = settings.tenantRateLimit;
		const rateLimiter: RateLimiter | null = !limit
			? null
			: redis
				? new RedisRateLimiter(redis, settings.redisPrefix, limit, settings.tenantRateWindowMs)
				: new MemoryRateLimiter(limit, settings.tenantRateWindowMs);
		this.auth = new GatewayAuth({
			keyStore: keyStoreFor(this.broker, redis, settings.redisPrefix),
			serviceToken: settings.serviceToken,
			rateLimiter,
			reachable: this.reachable,
			onKeyUseError: err => this.logger.warn("Recording an API key's use failed", err)
		});
		this.uiSockets = new UiSockets({
			maxBufferedBytes: settings.uiMaxBufferedBytes,
			heartbeatMs: settings.uiHeartbeatMs,
			closeGraceMs: 1000,
			clock: settings.clock,
			onOccupied: () => void this.feedUi()
		});
		this.uiAdmitting = 0;
		// Task frames as the queue records them (from Redis, not the transporter, so a transporter outage
		// loses none).
		const backend = { redis, redisPrefix: settings.redisPrefix, outboxMax: DEFAULT_OUTBOX_MAX };
		this.taskFrames = frameFeed(this.broker, backend, text => {
			if (this.uiSockets.size === 0) return;
			const frame = JSON.parse(text) as { tenant_id: string };
			this.uiSockets.publish(frame.tenant_id, frame);
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
	},

	// Runs before moleculer-web's `stopped`, whose server.close() would wait for open sockets.
	async stopped(this: ApiThis) {
		this.reachable.stop();
		this.uiServer.close();
		await Promise.all([this.uiSockets.close(), this.mcp.close()]);
		await this.taskFrames.close();
		// Keep-alive connections left idle by the drain would hold moleculer-web's server.close() open.
		this.server.closeIdleConnections();
	}
};

export default ApiService;
