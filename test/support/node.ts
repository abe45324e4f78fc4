import type { AddressInfo } from "net";
import { ServiceBroker, type BrokerOptions, type ServiceSchema } from "moleculer";
import ApiService from "../../services/api.service";
import ExecutorService from "../../services/executor.service";
import NotifierService from "../../services/notifier.service";
import RegistryService from "../../services/registry.service";
import ValidatorService from "../../services/validator.service";

export const SERVICE_TOKEN = "test-service-token-0123456789";

const SCHEMAS: Record<string, ServiceSchema> = {
	api: ApiService as unknown as ServiceSchema,
	registry: RegistryService as unknown as ServiceSchema,
	validator: ValidatorService as unknown as ServiceSchema,
	executor: ExecutorService as unknown as ServiceSchema,
	notifier: NotifierService as unknown as ServiceSchema
};

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
		transporter: (options.transporter ?? null) as BrokerOptions["transporter"],
		...options.broker
	});
	const settings = {
		port: 0,
		ip: "127.0.0.1",
		serviceToken: SERVICE_TOKEN,
		redisUrl: options.redisUrl,
		redisPrefix: options.redisPrefix ?? "test:",
		...options.settings
	};
	// Moleculer 0.15 ignores createService's second argument: overrides go in through a mixin.
	for (const name of options.services ?? Object.keys(SCHEMAS))
		broker.createService({ name, mixins: [SCHEMAS[name]], settings } as ServiceSchema);
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
