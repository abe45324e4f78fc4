import type { IncomingMessage, ServerResponse } from "http";
import { MetricReporters } from "moleculer";
import { matchesDigest } from "../credentials";
import { sendError } from "../error-response";
import { unauthorized } from "../errors";
import { ownMetrics, type LabelRenderer } from "./own-metrics";

/**
 * Moleculer's Prometheus reporter without its own HTTP server: the gateway serves its text at
 * `GET /metrics` on the shared port, followed by the per-request metrics kept outside Moleculer's
 * registry (./own-metrics.ts). Everything else (formatting, default labels) is the original's.
 */
export class GatewayPrometheusReporter extends MetricReporters.Prometheus {
	override init(registry: Parameters<InstanceType<typeof MetricReporters.Base>["init"]>[0]): void {
		MetricReporters.Base.prototype.init.call(this, registry);
		const labels = (this.opts as { defaultLabels?: unknown }).defaultLabels;
		(this as unknown as { defaultLabels: unknown }).defaultLabels =
			typeof labels === "function" ? labels.call(this, registry) : labels;
	}

	/**
	 * Answers `GET /metrics`: behind the service token (the SHA-256 `tokenDigest`) when one is set,
	 * since labels name tenants and tools.
	 */
	serve(req: IncomingMessage, res: ServerResponse, tokenDigest: Buffer | null): void {
		const credential = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? "")?.[1];
		if (tokenDigest && !(credential && matchesDigest(credential, tokenDigest)))
			return void sendError(res, unauthorized());
		res.writeHead(200, { "Content-Type": "text/plain; version=0.0.4; charset=utf-8" });
		const labelsToStr = (this as unknown as { labelsToStr: LabelRenderer }).labelsToStr.bind(this);
		res.end(this.generatePrometheusResponse() + ownMetrics(this.registry.broker).render(labelsToStr));
	}

	override async stop(): Promise<void> {}
}
