import type { AddressInfo } from "net";
import path from "path";
import { ServiceBroker, type BrokerOptions, type ServiceSchema } from "moleculer";
import { GatewayPrometheusReporter } from "../../lib/metrics/gateway-prometheus-reporter";
import { transporterFor } from "../../lib/transporter";

export const SERVICE_TOKEN = "test-service-token-0123456789";

const SERVICE_NAMES = ["api", "registry", "validator", "executor", "notifier", "sources", "audit", "keys"];

/**
 * Tests load the TypeScript sources; benchmarks set BENCH_COMPILED=1 to measure the compiled
 * service in dist/ (`npm run build`), as production runs it (calculator workers included).
 */
const servicesDir = path.join(
	__dirname,
	process.env.BENCH_COMPILED === "1" ? "../../dist/services" : "../../services"
);
const schemaOf = (name: string): ServiceSchema =>
	(require(path.join(servicesDir, `${name}.service`)) as { default: ServiceSchema }).default;

/**
 * Broker options that serve `/metrics` as the real config does on a gateway node (test brokers keep
 * metrics off by default). Moleculer's types do not list a reporter instance.
 */
export const METRICS_ON = {
	metrics: { enabled: true, reporter: new GatewayPrometheusReporter({}) }
} as unknown as Partial<BrokerOptions>;

export interface NodeOptions {
	services?: string[];
	redisUrl?: string;
	redisPrefix?: string;
	transporter?: string;
	nodeID?: string;
	/** Settings merged into every service (e.g. `rateLimit`). */
	settings?: Record<string, unknown>;
	broker?: Partial<BrokerOptions>;
}

export interface TestNode {
	broker: ServiceBroker;
	/** Base URL of the gateway when this node runs `api`. */
	url: string;
	stop(): Promise<void>;
}

/** Starts a real broker with the project's services; the gateway listens on a free port. */
export async function startNode(options: NodeOptions = {}): Promise<TestNode> {
	const broker = new ServiceBroker({
		logger: false,
		nodeID: options.nodeID,
		transporter: transporterFor(options.transporter),
		...options.broker
	});
	const settings = {
		port: 0,
		ip: "127.0.0.1",
		serviceToken: SERVICE_TOKEN,
		redisUrl: options.redisUrl,
		redisPrefix: options.redisPrefix ?? "test:",
		// A model in a worker per test node would cost the suite minutes: suites about semantic ranking opt in.
		embeddings: "off",
		...options.settings
	};
	// Moleculer 0.15 ignores createService's second argument: overrides go in through a mixin.
	for (const name of options.services ?? SERVICE_NAMES)
		broker.createService({ name, mixins: [schemaOf(name)], settings } as ServiceSchema);
	await broker.start();
	const api = broker.getLocalService("api") as unknown as { server?: { address(): AddressInfo } } | undefined;
	const url = api?.server ? `http://127.0.0.1:${api.server.address().port}` : "";
	return { broker, url, stop: () => broker.stop() };
}

export interface HttpResult<T = any> {
	status: number;
	headers: Headers;
	body: T;
}

/** A REST call over real HTTP; `body` may be a raw string to send malformed JSON. */
export async function http<T = any>(
	base: string,
	method: string,
	path: string,
	options: { body?: unknown; headers?: Record<string, string>; token?: string | null; tenant?: string } = {}
): Promise<HttpResult<T>> {
	const headers: Record<string, string> = { ...options.headers };
	const token = options.token === undefined ? SERVICE_TOKEN : options.token;
	if (token) headers.authorization = `Bearer ${token}`;
	if (options.tenant) headers["x-tenant-id"] = options.tenant;
	let body: string | undefined;
	if (options.body !== undefined) {
		body = typeof options.body === "string" ? options.body : JSON.stringify(options.body);
		headers["content-type"] ??= "application/json";
	}
	const res = await fetch(base + path, { method, headers, body });
	const text = await res.text();
	let parsed: unknown = text;
	try {
		parsed = text ? JSON.parse(text) : null;
	} catch {
		// Non-JSON bodies are returned as text so a test can assert on them.
	}
	return { status: res.status, headers: res.headers, body: parsed as T };
}
