/**
 * The service's configuration: every environment variable it reads, parsed and validated once.
 * `CONFIG_VARIABLES` is the single source: `loadConfig` builds the typed settings from it and
 * docs/configuration.md's table is generated from it (`npm run config-docs`; a test compares them).
 */

import os from "node:os";
import { parseDescriptionPolicies } from "./description-policy";
import { clusterNodes } from "./redis";
import { parseSecretsKey } from "./secret-box";

/** One environment variable: how it is documented and how its raw text becomes a setting. */
export interface Variable<T> {
	name: string;
	/** The default as shown in the docs. */
	shown: string;
	doc: string;
	/** Secrets are never echoed in an error. */
	secret?: boolean;
	/** The setting for `raw` (unset or empty = undefined); throws a message saying what is expected. */
	parse(raw: string | undefined): T;
}

const blank = (raw: string | undefined): raw is undefined => raw === undefined || raw.trim() === "";

function text(name: string, doc: string, fallback: string, shown = `\`${fallback}\``): Variable<string> {
	return { name, doc, shown, parse: raw => (blank(raw) ? fallback : raw.trim()) };
}

function optionalText(name: string, doc: string, shown = "unset"): Variable<string | undefined> {
	return { name, doc, shown, parse: raw => (blank(raw) ? undefined : raw.trim()) };
}

function secret(name: string, doc: string, shown: string): Variable<string | undefined> {
	return { name, doc, shown, secret: true, parse: raw => (blank(raw) ? undefined : raw) };
}

function integer(name: string, doc: string, fallback: number, min: number, max = Number.MAX_SAFE_INTEGER) {
	const variable: Variable<number> = {
		name,
		doc,
		shown: `\`${fallback}\``,
		parse(raw) {
			if (blank(raw)) return fallback;
			const value = Number(raw.trim());
			if (!/^\d+$/.test(raw.trim()) || value < min || value > max)
				throw new Error(
					max === Number.MAX_SAFE_INTEGER
						? `must be a whole number ≥ ${min}`
						: `must be a whole number from ${min} to ${max}`
				);
			return value;
		}
	};
	return variable;
}

function oneOf<T extends string>(name: string, doc: string, values: readonly T[], fallback: T): Variable<T> {
	return {
		name,
		doc,
		shown: `\`${fallback}\``,
		parse(raw) {
			if (blank(raw)) return fallback;
			const value = raw.trim() as T;
			if (!values.includes(value)) throw new Error(`must be one of ${values.join(", ")}`);
			return value;
		}
	};
}

function url(name: string, doc: string, protocols: readonly string[]): Variable<string | undefined> {
	return {
		name,
		doc,
		shown: "unset",
		parse(raw) {
			if (blank(raw)) return undefined;
			let parsed: URL;
			try {
				parsed = new URL(raw.trim());
			} catch {
				throw new Error(`must be a URL (${protocols.map(p => `${p}//…`).join(" or ")})`);
			}
			if (!protocols.includes(parsed.protocol))
				throw new Error(`must be a ${protocols.map(p => `${p}//`).join(" or ")} URL`);
			return raw.trim();
		}
	};
}

function list(name: string, doc: string, shown = "unset"): Variable<string[]> {
	return {
		name,
		doc,
		shown,
		parse: raw =>
			(raw ?? "")
				.split(",")
				.map(item => item.trim())
				.filter(Boolean)
	};
}

/** A variable read by a parser of its own (which throws a message saying what it expects). */
function custom<T>(
	name: string,
	doc: string,
	shown: string,
	parse: (raw: string | undefined) => T
): Variable<T> {
	return { name, doc, shown, parse };
}

/** A `redis://`/`rediss://` URL, or a `redis+cluster://` list of seed nodes. */
function parseRedisUrl(raw: string | undefined): string | undefined {
	if (blank(raw)) return undefined;
	if (clusterNodes(raw.trim())) return raw.trim();
	return url("REDIS_URL", "", ["redis:", "rediss:", "redis+cluster:", "rediss+cluster:"]).parse(raw);
}

/**
 * Two query threads where there are two cores: the model limits never-asked hybrid queries, and on the
 * 2-core machine a second thread answered 30% more of them for 6-10% more CPU each (docs/discovery.md#speed).
 * No more by default: each thread holds a model, and in a container Node may count the host's cores.
 */
const DEFAULT_EMBEDDING_THREADS = Math.min(2, os.availableParallelism());

const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace"] as const;

/** Every variable the service reads, in the order the docs list them. */
export const CONFIG_VARIABLES = {
	port: integer(
		"PORT",
		"HTTP port of the gateway, or on a node without one of its `/metrics`, `/health` and `/health/ready` (`0` = any free port; the chosen port is logged)",
		3000,
		0,
		65535
	),
	host: text("HOST", "bind address", "0.0.0.0"),
	transporter: optionalText(
		"TRANSPORTER",
		"unset = one process; `nats://host:4222` = cluster over NATS (a node that cannot reach it at start says so and exits)"
	),
	redisUrl: custom(
		"REDIS_URL",
		"unset = memory; set = tools, keys, tasks, usage and the outbox live in Redis, and the queues are durable there (a node that cannot reach it at start says so and exits); `redis+cluster://h1:port,h2:port` = Redis Cluster (docs/scaling.md)",
		"unset",
		parseRedisUrl
	),
	services: list(
		"SERVICES",
		"comma list of services this node runs: `api,keys,registry,validator,executor,notifier,sources,audit`",
		"all"
	),
	serviceToken: secret(
		"SERVICE_TOKEN",
		"shared secret of trusted services; unset, a random one is made up at start and printed once as `SERVICE_TOKEN=…` (with `NODE_ENV=production` the start stops instead)",
		"made up"
	),
	orchestratorWsUrl: url(
		"ORCHESTRATOR_WS_URL",
		"orchestrator WebSocket; unset = notifications wait in the outbox",
		["ws:", "wss:"]
	),
	orchestratorUrl: url("ORCHESTRATOR_URL", "orchestrator HTTP base URL for the RAG tools", [
		"http:",
		"https:"
	]),
	logLevel: oneOf(
		"LOG_LEVEL",
		"`fatal`…`trace`; the gateway logs every request and response line only at `debug`/`trace` (moleculer-web builds those lines even when their level is off, so they are not configured otherwise)",
		LOG_LEVELS,
		"info"
	),
	outboundAllowHosts: list(
		"OUTBOUND_ALLOW_HOSTS",
		"hosts, IPs or CIDRs tenant-configured calls may reach although private, each optionally `:port` to open that port only (docs/security.md)"
	),
	rateLimit: integer(
		"RATE_LIMIT",
		"requests per tenant per window, shared by all gateways through Redis; `0` disables",
		6000,
		0
	),
	rateLimitWindowMs: integer("RATE_LIMIT_WINDOW_MS", "rate-limit window", 60000, 1),
	requestTimeoutMs: integer(
		"REQUEST_TIMEOUT_MS",
		"time a request's headers and body have to arrive; a slower one gets 408 and its connection is closed",
		30000,
		100
	),
	mcpMaxSessionsPerCredential: integer(
		"MCP_MAX_SESSIONS_PER_CREDENTIAL",
		"open MCP sessions per API key (per tenant for the service token) on one gateway; past it 429, after closing the longest-silent one if it was silent 60 s",
		50,
		1
	),
	mcpMaxSessions: integer(
		"MCP_MAX_SESSIONS",
		"open MCP sessions on one gateway, all credentials together (about 45 KiB each); past it 429, after closing the longest-silent one if it was silent 60 s",
		2000,
		1
	),
	taskConcurrency: integer(
		"TASK_CONCURRENCY",
		"queued tasks one executor node runs at once (most tools wait on an upstream, so many fit)",
		32,
		1
	),
	healthRecheckMs: integer(
		"HEALTH_RECHECK_MS",
		"first re-probe of a tool whose upstream did not answer; the wait doubles after each failure",
		60000,
		1
	),
	healthRecheckMaxMs: integer(
		"HEALTH_RECHECK_MAX_MS",
		"longest wait between re-probes of an unreachable tool",
		3600000,
		1
	),
	descriptionPolicy: oneOf(
		"DESCRIPTION_POLICY",
		"`warn`: a tool whose descriptions the guard flags is stored with its warnings; `refuse`: register/update answers 422 with the findings",
		["warn", "refuse"] as const,
		"warn"
	),
	descriptionPolicyTenants: custom(
		"DESCRIPTION_POLICY_TENANTS",
		"per-tenant overrides of `DESCRIPTION_POLICY`, e.g. `acme=refuse,lab=warn`",
		"unset",
		raw => {
			try {
				return parseDescriptionPolicies("warn", raw).tenants;
			} catch (err) {
				throw new Error((err as Error).message.replace(/^DESCRIPTION_POLICY_TENANTS /, ""));
			}
		}
	),
	callbackSecret: secret("CALLBACK_SECRET", "HMAC key of task callbacks", "`SERVICE_TOKEN`"),
	secretsKey: {
		...secret(
			"SECRETS_KEY",
			"32-byte key (64 hex digits or base64) that encrypts tool and source secrets stored in Redis (AES-256-GCM); unset in development, one is made up and kept in `.tool-registry-secrets.key` (with a warning); `NODE_ENV=production` refuses to start without it or `SECRETS_KEY_FILE`",
			"made up (development)"
		),
		parse: (raw: string | undefined) => {
			if (blank(raw)) return undefined;
			parseSecretsKey(raw);
			return raw.trim();
		}
	},
	secretsKeyFile: optionalText("SECRETS_KEY_FILE", "a file holding `SECRETS_KEY` (e.g. a mounted secret)"),
	secretsKeyPrevious: {
		...custom(
			"SECRETS_KEY_PREVIOUS",
			"comma list of earlier keys, still read while a rotation re-encrypts every stored secret under `SECRETS_KEY` in the background (docs/governance.md)",
			"unset",
			raw => {
				const keys = blank(raw)
					? []
					: raw
							.split(",")
							.map(key => key.trim())
							.filter(Boolean);
				keys.forEach(parseSecretsKey);
				return keys;
			}
		),
		secret: true
	},
	auditRetentionDays: integer("AUDIT_RETENTION_DAYS", "audit entries older than this are dropped", 30, 1),
	auditMaxEntries: integer(
		"AUDIT_MAX_ENTRIES",
		"audit entries kept per tenant, oldest dropped first (Redis trims approximately)",
		100000,
		1
	),
	auditExecutions: custom(
		"AUDIT_EXECUTIONS",
		"which executions the audit trail records: `all`, `off`, or a sampled share such as `0.1`",
		"`all`",
		raw => {
			const value = blank(raw) ? "all" : raw.trim();
			if (value === "all") return 1;
			if (value === "off") return 0;
			const rate = Number(value);
			if (!/^(0(\.\d+)?|1(\.0+)?)$/.test(value) || !(rate >= 0 && rate <= 1))
				throw new Error("must be all, off or a share from 0 to 1");
			return rate;
		}
	),
	redisPrefix: text("REDIS_PREFIX", "key namespace in a shared Redis", "tool-registry:"),
	heartbeatIntervalS: integer(
		"HEARTBEAT_INTERVAL_S",
		"seconds between a node's heartbeats on the transporter",
		1,
		1,
		60
	),
	heartbeatTimeoutS: integer(
		"HEARTBEAT_TIMEOUT_S",
		"a node silent this long is taken as gone, found within twice this: calls it held fail over to a live node when the tool is idempotent or read-only, else answer 503 `EXECUTOR_LOST` with `Retry-After`",
		3,
		2,
		600
	),
	namespace: text("NAMESPACE", "Moleculer namespace (separates clusters sharing one NATS)", "", "empty"),
	nodeId: optionalText("NODE_ID", "Moleculer node id", "host-pid"),
	logFormat: oneOf(
		"LOG_FORMAT",
		"`json` for one JSON object per line (the Docker image sets it)",
		["text", "json"] as const,
		"text"
	),
	metrics: oneOf(
		"METRICS",
		"`off` disables metrics (Moleculer's and the service's own; `/metrics` answers 404)",
		["on", "off"] as const,
		"on"
	),
	tracingExporter: optionalText(
		"TRACING_EXPORTER",
		"Moleculer tracing exporter (`Console`, `Zipkin`, `Jaeger`, `Datadog`, …); unset = no spans"
	),
	embeddings: oneOf(
		"EMBEDDINGS",
		"how discovery embeds text for semantic ranking: `local` (a model shipped in an npm package, run off the event loop), `orchestrator` (POST to `{ORCHESTRATOR_URL}/api/v1/embeddings`), `off` (lexical only)",
		["local", "orchestrator", "off"] as const,
		"local"
	),
	embeddingThreads: {
		...integer(
			"EMBEDDING_THREADS",
			"worker threads that embed discovery queries with the local model, each holding its own copy; tool descriptions have one more, at the lowest CPU priority. More pay only with cores the event loop does not need (docs/discovery.md#speed)",
			DEFAULT_EMBEDDING_THREADS,
			1,
			32
		),
		shown: "`2` (`1` on one core)"
	},
	discoverySharding: oneOf(
		"DISCOVERY_SHARDING",
		"`tenant`: each registry node holds the discovery indexes of the tenants it owns (Moleculer `Shard` on the tenant), about 1/N each; `off`: any node may hold any tenant's (docs/scaling.md)",
		["off", "tenant"] as const,
		"off"
	),
	nodeEnv: optionalText("NODE_ENV", "`production` refuses to start without `SERVICE_TOKEN` and `SECRETS_KEY`")
};

type Variables = typeof CONFIG_VARIABLES;

/** The validated settings, typed by what each variable's parser returns. */
export type Config = { readonly [K in keyof Variables]: ReturnType<Variables[K]["parse"]> };

/** Bad configuration; `message` is one line naming every offending variable. */
export class ConfigError extends Error {
	override name = "ConfigError";
}

/** Parses every variable of `env`; throws one ConfigError listing all the problems found. */
export function loadConfig(env: NodeJS.ProcessEnv): Config {
	const settings: Record<string, unknown> = {};
	const problems: string[] = [];
	for (const [key, variable] of Object.entries(CONFIG_VARIABLES) as [string, Variable<unknown>][]) {
		const raw = env[variable.name];
		try {
			settings[key] = variable.parse(raw);
		} catch (err) {
			const got = variable.secret ? "" : ` (got ${JSON.stringify(raw)})`;
			problems.push(`${variable.name} ${(err as Error).message}${got}`);
		}
	}
	if (problems.length) throw new ConfigError(`Invalid configuration: ${problems.join("; ")}`);
	return settings as Config;
}

let current: Config | undefined;

/**
 * This process's configuration, parsed from `process.env` on first use. The runner's config file
 * asks first, so a bad value stops the start before any service loads.
 */
export function config(): Config {
	return (current ??= loadConfig(process.env));
}

/** Whether this node runs `service` (every service when SERVICES is unset). */
export const runsService = (settings: Config, service: string): boolean =>
	settings.services.length === 0 || settings.services.includes(service);

/** The docs' table rows: variable, default, meaning. */
export const configurationRows = (): [string, string, string][] =>
	Object.values(CONFIG_VARIABLES).map((v: Variable<unknown>) => [`\`${v.name}\``, v.shown, v.doc]);
