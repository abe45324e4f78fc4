import type { ServiceBroker } from "moleculer";

/**
 * The service's gauges and rare counters (beside Moleculer's), as Prometheus shows them with `.` → `_`;
 * per-execution metrics are in ./execution-metrics.ts.
 */
export const METRICS = {
	queueDepth: "tool_registry.queue.depth",
	queueOldestAge: "tool_registry.queue.oldest_age",
	outboxSize: "tool_registry.outbox.size",
	notifierConnected: "tool_registry.notifier.connected",
	notifierLeader: "tool_registry.notifier.leader",
	toolsRegistered: "tool_registry.tools.registered",
	toolsUnreachable: "tool_registry.tools.unreachable",
	vectorsPending: "tool_registry.discovery.vectors_pending",
	descriptionFindings: "tool_registry.description.findings.total",
	sourceHealthy: "tool_registry.source.healthy",
	sourceTools: "tool_registry.source.tools",
	sourceLastRefresh: "tool_registry.source.last_refresh"
} as const;

interface Definition {
	type: "counter" | "gauge" | "histogram";
	labelNames?: string[];
	unit?: string;
	buckets?: number[];
	description: string;
}

const DEFINITIONS: Record<keyof typeof METRICS, Definition> = {
	queueDepth: {
		type: "gauge",
		labelNames: ["queue", "tenant"],
		description: "Pending tasks per tenant queue"
	},
	queueOldestAge: {
		type: "gauge",
		labelNames: ["queue", "tenant"],
		unit: "seconds",
		description: "Age of the oldest pending task per tenant queue"
	},
	outboxSize: { type: "gauge", description: "Notifications waiting in the outbox for the orchestrator" },
	notifierConnected: { type: "gauge", description: "1 while the notifier is connected and authenticated" },
	notifierLeader: { type: "gauge", description: "1 on the notifier node holding the leader lock" },
	toolsRegistered: { type: "gauge", labelNames: ["tenant"], description: "Registered tools per tenant" },
	toolsUnreachable: {
		type: "gauge",
		description: "Active tools whose upstream did not answer their last probe (probed again with backoff)"
	},
	vectorsPending: {
		type: "gauge",
		description:
			"Tool vectors this node has still to compute or read (those tools are ranked lexically meanwhile)"
	},
	descriptionFindings: {
		type: "counter",
		labelNames: ["tenant", "rule"],
		description: "Findings of the description guard in registered and updated definitions, by rule"
	},
	sourceHealthy: {
		type: "gauge",
		labelNames: ["tenant", "source"],
		description: "1 while a tool source answered its last refresh, 0 while it is unreachable"
	},
	sourceTools: { type: "gauge", labelNames: ["tenant", "source"], description: "Tools a source offers" },
	sourceLastRefresh: {
		type: "gauge",
		labelNames: ["tenant", "source"],
		unit: "seconds",
		description: "Unix time of a source's last successful refresh"
	}
};

/** Registers the named metrics once per broker (a no-op when metrics are disabled). */
export function registerMetrics(broker: ServiceBroker, ...keys: (keyof typeof METRICS)[]): void {
	for (const key of keys)
		if (!broker.metrics.getMetric(METRICS[key]))
			broker.metrics.register({ ...DEFINITIONS[key], name: METRICS[key] } as Parameters<
				typeof broker.metrics.register
			>[0]);
}
