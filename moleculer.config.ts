import type { BrokerOptions } from "moleculer";
import { GatewayPrometheusReporter } from "./lib/metrics/gateway-prometheus-reporter";
import { NodeMetricsListener } from "./lib/metrics/node-metrics-listener";
import { brokerMiddlewares } from "./lib/metrics/broker-middlewares";
import { RedactingConsoleLogger } from "./lib/redacting-logger";
import { replCommands } from "./lib/repl-commands";
import { ensureServiceToken } from "./lib/service-token";
import { config, ConfigError, runsService, type Config } from "./lib/config";
import { unreachableDependencies } from "./lib/startup-checks";
import { transporterFor } from "./lib/transporter";

type MetricsOptions = Exclude<BrokerOptions["metrics"], boolean | undefined>;
type TracingOptions = Exclude<BrokerOptions["tracing"], boolean | undefined>;

/** Stops the start with one line for the operator, before any service loads. */
function refuse(line: string): never {
	process.stderr.write(`${line}\n`);
	return process.exit(1);
}

/** `npm run repl` only joins a cluster: it runs no service, so it needs no token of its own. */
const replOnly = process.argv.includes("--repl") && !process.env.SERVICEDIR;
if (!replOnly) ensureServiceToken(process.env, line => process.stdout.write(`${line}\n`), refuse);

let settings: Config;
try {
	settings = config();
} catch (err) {
	refuse(err instanceof ConfigError ? err.message : String(err));
}

// Tool and source secrets are encrypted at rest with SECRETS_KEY: production never falls back to a made-up key.
if (!replOnly && settings.nodeEnv === "production" && !settings.secretsKey && !settings.secretsKeyFile)
	refuse(
		"SECRETS_KEY is not set; NODE_ENV=production requires it or SECRETS_KEY_FILE (tool and source secrets are encrypted with it)"
	);

/** Nodes with the gateway serve metrics at its `/metrics`; others listen on their own PORT and HOST. */
const runsGateway = runsService(settings, "api");

const metricsOn = settings.metrics === "on";

/**
 * Broker options from the environment (lib/config.ts). With no TRANSPORTER every service runs in
 * this one process; with `nats://...` nodes form one cluster.
 */
const brokerOptions: BrokerOptions = {
	namespace: settings.namespace,
	nodeID: settings.nodeId ?? null,
	transporter: transporterFor(settings.transporter),
	// No secret reaches a log line, whoever logs it (lib/redacting-logger.ts).
	logger: new RedactingConsoleLogger({
		// JSON lines for log shippers; human-readable otherwise.
		formatter: settings.logFormat === "json" ? "json" : "short",
		colors: settings.logFormat !== "json",
		moduleColors: false,
		secrets: [settings.serviceToken, settings.callbackSecret, settings.secretsKey].filter(
			secret => secret !== undefined
		)
	}),
	logLevel: settings.logLevel,
	serializer: "JSON",
	// Executions bring their own timeouts; this bounds everything else.
	requestTimeout: 30 * 1000,
	// A crashed node sends no goodbye: the silence of its heartbeats is what ends the calls it held.
	heartbeatInterval: settings.heartbeatIntervalS,
	heartbeatTimeout: settings.heartbeatTimeoutS,
	retryPolicy: { enabled: false },
	registry: { strategy: "RoundRobin", preferLocal: true },
	circuitBreaker: { enabled: false },
	bulkhead: { enabled: false },
	validator: true,
	tracking: { enabled: true, shutdownTimeout: 10 * 1000 },
	// Operator commands of `npm run repl` (lib/repl-commands.ts).
	replOptions: { customCommands: replCommands },
	metrics: {
		enabled: metricsOn,
		reporter: (runsGateway
			? new GatewayPrometheusReporter({})
			: new NodeMetricsListener({
					port: settings.port,
					host: settings.host,
					serviceToken: settings.serviceToken
				})) as unknown as MetricsOptions["reporter"]
	},
	// Spans follow one request across nodes (its X-Request-ID is the trace id); exported when an
	// exporter is named, e.g. TRACING_EXPORTER=Console, Zipkin, Jaeger, Datadog.
	tracing: {
		enabled: Boolean(settings.tracingExporter),
		exporter: (settings.tracingExporter ? [settings.tracingExporter] : []) as TracingOptions["exporter"]
	},
	// Moleculer's own list with our cheap request metrics in place of its `Metrics` (lib/metrics).
	internalMiddlewares: false,
	middlewares: brokerMiddlewares(metricsOn, process.argv.includes("--hot")),
	skipProcessEventRegistration: false
};

/**
 * The runner awaits this before it creates the broker: a node whose Redis or NATS does not answer
 * says so in one line and exits, instead of starting half-connected.
 */
export = async function brokerConfig(): Promise<BrokerOptions> {
	const unreachable = await unreachableDependencies(settings);
	if (unreachable.length) refuse(unreachable.join("; "));
	return brokerOptions;
};
