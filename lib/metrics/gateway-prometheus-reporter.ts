import { MetricReporters } from "moleculer";

/**
 * Moleculer's Prometheus reporter without its own HTTP server: the gateway serves its text at
 * `GET /metrics` on the shared port. Everything else (formatting, default labels) is the original's.
 */
export class GatewayPrometheusReporter extends MetricReporters.Prometheus {
	override init(registry: Parameters<InstanceType<typeof MetricReporters.Base>["init"]>[0]): void {
		MetricReporters.Base.prototype.init.call(this, registry);
		const labels = (this.opts as { defaultLabels?: unknown }).defaultLabels;
		(this as unknown as { defaultLabels: unknown }).defaultLabels =
			typeof labels === "function" ? labels.call(this, registry) : labels;
	}

	override async stop(): Promise<void> {}
}
