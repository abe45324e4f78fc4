import { createServer, type Server } from "http";
import type { AddressInfo } from "net";
import { sha256 } from "../credentials";
import { sendError } from "../error-response";
import { notFound } from "../errors";
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
 * gateway's) and `GET /health` on the node's own `PORT` and `HOST`, so it needs no port of its own.
 */
export class NodeMetricsListener extends GatewayPrometheusReporter {
	private listener?: Server;

	constructor(private readonly listen: NodeMetricsListenerOptions) {
		super({});
	}

	override init(registry: Registry): void {
		super.init(registry);
		const tokenDigest = this.listen.serviceToken ? sha256(this.listen.serviceToken) : null;
		const logger = registry.broker.getLogger("metrics");
		this.listener = createServer((req, res) => {
			const path = (req.url ?? "/").split("?")[0];
			if (req.method === "GET" && path === "/metrics") return this.serve(req, res, tokenDigest);
			if (req.method === "GET" && path === "/health") {
				res.writeHead(200, { "Content-Type": "application/json; charset=utf-8" });
				return void res.end('{"status":"ok"}');
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
		const server = this.listener;
		this.listener = undefined;
		if (!server?.listening) return;
		server.closeAllConnections();
		await new Promise(resolve => server.close(resolve));
	}
}
