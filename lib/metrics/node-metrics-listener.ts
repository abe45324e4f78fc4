import { createServer, type Server } from "http";
import type { AddressInfo } from "net";
import { sha256 } from "../credentials";
import { DependencyWatch, readiness } from "../dependency-watch";
import { sendError } from "../error-response";
import { notFound } from "../errors";
import type { RedisClient } from "../redis";
import { GatewayPrometheusReporter } from "./gateway-prometheus-reporter";

type Registry = Parameters<GatewayPrometheusReporter["init"]>[0];

export interface NodeMetricsListenerOptions {
	/** `PORT`: several nodes on one host need nothing but distinct ports. */
	port: number;
	/** `HOST`: the address to bind, as the gateway does. */
	host: string;
	/** `SERVICE_TOKEN`: required of every scrape when set. */
	serviceToken?: string;
}

/**
 * The metrics of a node that runs no gateway: `GET /metrics` (behind the service token, like the
 * gateway's), `GET /health` and `GET /health/ready` (the gateway's checks: this node's services, the
 * transporter, Redis) on the node's own `PORT` and `HOST`, so it needs no port of its own.
 */
export class NodeMetricsListener extends GatewayPrometheusReporter {
	private listener?: Server;
	/** Made once the node's services exist: Redis is theirs. */
	private dependencies?: DependencyWatch;

	constructor(private readonly listen: NodeMetricsListenerOptions) {
		super({});
	}

	override init(registry: Registry): void {
		super.init(registry);
		const tokenDigest = this.listen.serviceToken ? sha256(this.listen.serviceToken) : null;
		const { broker } = registry;
		const logger = broker.getLogger("metrics");
		broker.localBus.once("$broker.started", () => {
			// Each service has its own connection to the same Redis: the first one's state stands for all.
			const redis = broker.services
				.map(service => (service as unknown as { redis?: RedisClient | null }).redis)
				.find(client => client);
			this.dependencies = new DependencyWatch(broker, redis ?? null, logger);
			this.dependencies.start();
		});
		this.listener = createServer((req, res) => {
			const path = (req.url ?? "/").split("?")[0];
			if (req.method === "GET" && path === "/metrics") return this.serve(req, res, tokenDigest);
			if (req.method === "GET" && path === "/health") {
				res.writeHead(200, { "Content-Type": "application/json; charset=utf-8" });
				return void res.end('{"status":"ok"}');
			}
			if (req.method === "GET" && path === "/health/ready") {
				const answer = readiness(this.dependencies?.checks() ?? { services: "down" });
				res.writeHead(answer.failed.length ? 503 : 200, {
					"Content-Type": "application/json; charset=utf-8"
				});
				return void res.end(JSON.stringify(answer));
			}
			sendError(res, notFound("Path", path));
		});
		// A taken port is an operator's mistake to fix: said in one line, and the node stops.
		this.listener.once("error", err => {
			logger.fatal(`Metrics cannot listen on ${this.listen.host}:${this.listen.port}: ${err.message}`);
			process.exit(1);
		});
		this.listener.listen(this.listen.port, this.listen.host, () => {
			const { port } = this.listener!.address() as AddressInfo;
			logger.info(`Metrics listening on http://${this.listen.host}:${port}/metrics`);
		});
	}

	override async stop(): Promise<void> {
		this.dependencies?.stop();
		const server = this.listener;
		this.listener = undefined;
		if (!server?.listening) return;
		server.closeAllConnections();
		await new Promise(resolve => server.close(resolve));
	}
}
