import type { Service, ServiceSchema } from "moleculer";
import { registerMetrics, type METRICS } from "../lib/metrics/names";

export interface MetricsSamplerOptions {
	/** The metrics of lib/metrics/names.ts this service reports. */
	metrics: (keyof typeof METRICS)[];
	/** How often gauges are sampled by the service's `sampleMetrics` method. */
	intervalMs?: number;
}

interface SamplerLocals {
	metricsTimer: NodeJS.Timeout | null;
	sampleMetrics?(): Promise<void>;
}

/**
 * Registers a service's metrics and, when the service has a `sampleMetrics` method (gauges read
 * from state: queue depths, outbox size, tool counts), calls it periodically while it runs.
 */
export function MetricsSamplerMixin(options: MetricsSamplerOptions): Partial<ServiceSchema> {
	const mixin: Partial<ServiceSchema<object, object, SamplerLocals>> = {
		created(this: Service & SamplerLocals) {
			this.metricsTimer = null;
			registerMetrics(this.broker, ...options.metrics);
		},
		started(this: Service & SamplerLocals) {
			if (!this.sampleMetrics || !this.broker.isMetricsEnabled()) return;
			const sample = () =>
				this.sampleMetrics!().catch(err => this.logger.debug("Sampling metrics failed", err));
			this.metricsTimer = setInterval(sample, options.intervalMs ?? 5000).unref();
			void sample();
		},
		stopped(this: Service & SamplerLocals) {
			if (this.metricsTimer) clearInterval(this.metricsTimer);
		}
	};
	return mixin as Partial<ServiceSchema>;
}
