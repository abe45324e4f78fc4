import { monitorEventLoopDelay, type IntervalHistogram } from "perf_hooks";
import type { Middleware, ServiceBroker } from "moleculer";

/** The gauges each process reports of its own event loop (Prometheus: `.` → `_`). */
export const EVENT_LOOP_METRICS = {
	maxStall: "tool_registry.event_loop.max_stall",
	p99Delay: "tool_registry.event_loop.p99_delay"
} as const;

/** How often the gauges are brought up to date. */
const SAMPLE_MS = 1000;

/**
 * Measures this process's own event-loop delay from the moment its services have started (module
 * loading is not a stall a request could meet): the longest stall seen since then, and the 99th
 * percentile. Every node reports its own through its `/metrics` and Moleculer's `$node.metrics`, so
 * a stall is pinned on the process where it happened (the promise: no request blocks a loop > 100 ms).
 */
export function EventLoopMiddleware(): Middleware {
	let histogram: IntervalHistogram | null = null;
	let timer: NodeJS.Timeout | null = null;
	return {
		name: "EventLoop",
		created(broker: ServiceBroker) {
			broker.metrics.register({
				type: "gauge",
				name: EVENT_LOOP_METRICS.maxStall,
				unit: "milliseconds",
				description: "Longest event-loop stall of this process since its services started"
			});
			broker.metrics.register({
				type: "gauge",
				name: EVENT_LOOP_METRICS.p99Delay,
				unit: "milliseconds",
				description: "99th percentile of this process's event-loop delay since its services started"
			});
		},
		async started(broker: ServiceBroker) {
			const loop = monitorEventLoopDelay({ resolution: 10 });
			loop.enable();
			histogram = loop;
			const sample = () => {
				broker.metrics.set(EVENT_LOOP_METRICS.maxStall, Math.round(loop.max / 1e6));
				broker.metrics.set(EVENT_LOOP_METRICS.p99Delay, Math.round(loop.percentile(99) / 1e6));
			};
			timer = setInterval(sample, SAMPLE_MS).unref();
		},
		async stopped() {
			if (timer) clearInterval(timer);
			histogram?.disable();
		}
	};
}
