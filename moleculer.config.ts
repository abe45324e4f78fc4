import type { BrokerOptions } from "moleculer";
import { GatewayPrometheusReporter } from "./lib/metrics/gateway-prometheus-reporter";
import { NodeMetricsListener } from "./lib/metrics/node-metrics-listener";
import { replCommands } from "./lib/repl-commands";
import { ensureServiceToken } from "./lib/service-token";

type MetricsOptions = Exclude<BrokerOptions["metrics"], boolean | undefined>;
type TracingOptions = Exclude<BrokerOptions["tracing"], boolean | undefined>;

/** `npm run repl` only joins a cluster: it runs no service, so it needs no token of its own. */
const replOnly = process.argv.includes("--repl") && !process.env.SERVICEDIR;
if (!replOnly)
	ensureServiceToken(
		process.env,
		line => process.stdout.write(`${line}\n`),
		line => {
			process.stderr.write(`${line}\n`);
			return process.exit(1);
		}
	);

/** Nodes with the gateway serve metrics at its `/metrics`; others listen on their own PORT and HOST. */
const runsGateway =
	!process.env.SERVICES || process.env.SERVICES.split(",").some(name => name.trim() === "api");

/**
 * Broker options from the contract's environment (section 1). With no TRANSPORTER every
 * service runs in this one process; with `nats://...` nodes form one cluster.
 */
const config: BrokerOptions = {
	namespace: process.env.NAMESPACE ?? "",
	nodeID: process.env.NODE_ID || null,
	transporter: (process.env.TRANSPORTER || null) as BrokerOptions["transporter"],
	logger: {
		type: "Console",
		options: {
			// JSON lines for log shippers; human-readable otherwise.
			formatter: process.env.LOG_FORMAT === "json" ? "json" : "short",
			colors: process.env.LOG_FORMAT !== "json",
			moduleColors: false
		}
	},
	logLevel: (process.env.LOG_LEVEL as BrokerOptions["logLevel"]) ?? "info",
	serializer: "JSON",
	// Executions bring their own timeouts; this bounds everything else.
	requestTimeout: 30 * 1000,
	retryPolicy: { enabled: false },
	registry: { strategy: "RoundRobin", preferLocal: true },
	circuitBreaker: { enabled: false },
	bulkhead: { enabled: false },
	validator: true,
	tracking: { enabled: true, shutdownTimeout: 10 * 1000 },
	// Operator commands of `npm run repl` (lib/repl-commands.ts).
	replOptions: { customCommands: replCommands },
	metrics: {
		enabled: process.env.METRICS !== "off",
		reporter: (runsGateway
			? new GatewayPrometheusReporter({})
			: new NodeMetricsListener({
					port: process.env.PORT !== undefined ? Number(process.env.PORT) : 3000,
					host: process.env.HOST ?? "0.0.0.0",
					serviceToken: process.env.SERVICE_TOKEN || undefined
				})) as unknown as MetricsOptions["reporter"]
	},
	// Spans follow one request across nodes (its X-Request-ID is the trace id); exported when an
	// exporter is named, e.g. TRACING_EXPORTER=Console, Zipkin, Jaeger, Datadog.
	tracing: {
		enabled: Boolean(process.env.TRACING_EXPORTER),
		exporter: (process.env.TRACING_EXPORTER
			? [process.env.TRACING_EXPORTER]
			: []) as TracingOptions["exporter"]
	},
	skipProcessEventRegistration: false
};

export = config;
