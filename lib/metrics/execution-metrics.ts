import type { ServiceBroker } from "moleculer";
import { ownMetrics, type Histogram, type Value } from "./own-metrics";

const BUCKETS = [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000];

/** Records one execution; the series are found through nested maps, so recording allocates nothing. */
export type ExecutionRecorder = (
	tenant: string,
	tool: string,
	type: string,
	outcome: string,
	ms: number
) => void;

/**
 * `tool_registry_executions_total` (tenant, tool, type, outcome) and `tool_registry_execution_duration`
 * (type), in the node's own metrics (./own-metrics.ts). Tenant × tool series are capped by the family
 * (past the cap they count under `_other`), so a registry of many tenants cannot grow /metrics unbounded.
 */
export function executionMetrics(broker: ServiceBroker): ExecutionRecorder {
	const metrics = ownMetrics(broker);
	const executions = metrics.counter(
		"tool_registry_executions_total",
		"Tool executions by tenant, tool, type and outcome (completed, timeout, tool_error, upstream_error)"
	);
	const duration = metrics.histogram(
		"tool_registry_execution_duration",
		"Execution time of tools by type",
		BUCKETS
	);
	const counts = new Map<string, Map<string, Map<string, Value>>>();
	const times = new Map<string, Histogram>();
	return (tenant, tool, type, outcome, ms) => {
		let byTool = counts.get(tenant);
		if (!byTool) counts.set(tenant, (byTool = new Map()));
		let byOutcome = byTool.get(tool);
		if (!byOutcome) byTool.set(tool, (byOutcome = new Map()));
		let count = byOutcome.get(outcome);
		if (!count) {
			const labels = { tenant, tool, type, outcome };
			const key = JSON.stringify(labels);
			byOutcome.set(outcome, (count = executions.get(key) ?? executions.add(key, labels)));
		}
		count.value++;
		let time = times.get(type);
		if (!time) times.set(type, (time = duration.get(type) ?? duration.add(type, { type })));
		time.observe(ms);
	};
}
