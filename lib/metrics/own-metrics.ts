import type { ServiceBroker } from "moleculer";

export type Labels = Record<string, string | number | null | undefined>;

/** A counter or gauge: one number, changed in place. */
export class Value {
	value = 0;
}

/** A Prometheus histogram with fixed buckets; counts per bucket, made cumulative when rendered. */
export class Histogram {
	readonly counts: Float64Array;
	sum = 0;
	count = 0;

	constructor(readonly buckets: readonly number[]) {
		this.counts = new Float64Array(buckets.length);
	}

	observe(value: number): void {
		this.sum += value;
		this.count++;
		const { buckets, counts } = this;
		for (let i = 0; i < buckets.length; i++)
			if (value <= buckets[i]) {
				counts[i]++;
				return;
			}
	}
}

type Metric = Value | Histogram;

/** Renders labels the way the node's Prometheus reporter does (default labels first, escaped values). */
export type LabelRenderer = (labels: Labels, extra?: Labels) => string;

/**
 * One metric name and its series. Callers keep the series they update (`get` once, then change the
 * returned object), so an update allocates nothing and hashes no labels. Series are bounded: past
 * `maxSeries` new label sets share one series whose labels all read `_other`.
 */
export class Family<T extends Metric> {
	private readonly series = new Map<string, { labels: Labels; metric: T }>();
	private overflow?: T;

	constructor(
		readonly name: string,
		readonly type: "counter" | "gauge" | "histogram",
		readonly help: string,
		private readonly create: () => T,
		private readonly maxSeries = 2000
	) {}

	/** The series keyed `key`, if it exists. */
	get(key: string): T | undefined {
		return this.series.get(key)?.metric;
	}

	/** Creates the series keyed `key` with `labels` (call after `get` missed). */
	add(key: string, labels: Labels): T {
		if (this.series.size >= this.maxSeries) {
			this.overflow ??= this.put(
				"\0overflow",
				Object.fromEntries(Object.keys(labels).map(k => [k, "_other"]))
			);
			return this.overflow;
		}
		return this.put(key, labels);
	}

	private put(key: string, labels: Labels): T {
		const metric = this.create();
		this.series.set(key, { labels, metric });
		return metric;
	}

	render(labelsToStr: LabelRenderer, lines: string[]): void {
		lines.push(`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} ${this.type}`);
		for (const { labels, metric } of this.series.values()) {
			if (metric instanceof Value) {
				lines.push(`${this.name}${labelsToStr(labels)} ${metric.value}`);
				continue;
			}
			let cumulative = 0;
			metric.buckets.forEach((le, i) => {
				cumulative += metric.counts[i];
				lines.push(`${this.name}_bucket${labelsToStr(labels, { le })} ${cumulative}`);
			});
			lines.push(`${this.name}_bucket${labelsToStr(labels, { le: "+Inf" })} ${metric.count}`);
			lines.push(`${this.name}_sum${labelsToStr(labels)} ${metric.sum}`);
			lines.push(`${this.name}_count${labelsToStr(labels)} ${metric.count}`);
		}
		lines.push("");
	}
}

/**
 * The metrics updated on every request (Moleculer's request, event and transit metrics, tool
 * executions), kept outside Moleculer's registry: its `increment`/`observe` hash a label object per
 * call and its request histogram keeps sliding quantiles and rates, which together cost more than
 * half of the gateway's throughput. Rendered into `/metrics` after Moleculer's own text.
 */
export class OwnMetrics {
	private readonly families = new Map<string, Family<Metric>>();

	counter(name: string, help: string): Family<Value> {
		return this.family(name, "counter", help, () => new Value());
	}

	gauge(name: string, help: string): Family<Value> {
		return this.family(name, "gauge", help, () => new Value());
	}

	histogram(name: string, help: string, buckets: readonly number[]): Family<Histogram> {
		return this.family(name, "histogram", help, () => new Histogram(buckets));
	}

	render(labelsToStr: LabelRenderer): string {
		const lines: string[] = [];
		for (const family of this.families.values()) family.render(labelsToStr, lines);
		return lines.join("\n");
	}

	private family<T extends Metric>(
		name: string,
		type: Family<T>["type"],
		help: string,
		create: () => T
	): Family<T> {
		const existing = this.families.get(name) as Family<T> | undefined;
		if (existing) return existing;
		const created = new Family(name, type, help, create);
		this.families.set(name, created as unknown as Family<Metric>);
		return created;
	}
}

const registries = new WeakMap<ServiceBroker, OwnMetrics>();

/** The broker's own metrics (one registry per broker, so test nodes in one process stay apart). */
export function ownMetrics(broker: ServiceBroker): OwnMetrics {
	let metrics = registries.get(broker);
	if (!metrics) registries.set(broker, (metrics = new OwnMetrics()));
	return metrics;
}
