import type { BrokerOptions } from "moleculer";
import { EventLoopMiddleware } from "./event-loop.middleware";
import { RequestMetricsMiddleware } from "./request-metrics.middleware";

/**
 * Moleculer's internal middlewares in its own order (the broker runs with `internalMiddlewares:
 * false`), with its `Metrics` replaced by ours (./request-metrics.middleware.ts): the built-in one
 * cost ~60% of the gateway's throughput; EventLoopMiddleware measures the process's own loop. With metrics off nothing meters requests at all; `hot` adds
 * what `moleculer-runner --hot` would have added to the internal ones.
 */
export function brokerMiddlewares(metrics: boolean, hot = false): NonNullable<BrokerOptions["middlewares"]> {
	return [
		"ActionHook",
		"Validator",
		"Bulkhead",
		"Cacher",
		"ContextTracker",
		"CircuitBreaker",
		"Timeout",
		"Retry",
		"Fallback",
		"ErrorHandler",
		"Tracing",
		...(metrics ? [RequestMetricsMiddleware(), EventLoopMiddleware()] : []),
		"Debounce",
		"Throttle",
		...(hot ? ["HotReload"] : [])
	];
}
