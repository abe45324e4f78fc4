import { LRUCache } from "lru-cache";
import CircuitBreaker from "opossum";
import { ToolFailure } from "./tool-contract";

export interface ToolGuardOptions {
	/** Failure percentage over the rolling window that opens the circuit. */
	errorThresholdPercentage: number;
	/** Calls in the window before the percentage is trusted. */
	volumeThreshold: number;
	rollingCountTimeout: number;
	/** Time an open circuit waits before letting one trial call through. */
	resetTimeout: number;
	/** Bulkhead: concurrent calls of one tool for one tenant; more are refused at once. */
	capacity: number;
	/** Guards kept; the least recently used is dropped beyond this. */
	maxGuards: number;
}

type Run = () => Promise<unknown>;

/** Only failures that say the upstream is unhealthy count towards opening a circuit. */
const isUpstreamFailure = (err: unknown) =>
	err instanceof ToolFailure && (err.type === "upstream_error" || err.type === "timeout");

/**
 * A circuit breaker and bulkhead (opossum) per tenant and tool: a dead upstream fails fast
 * instead of holding sockets and workers, and one tenant's flood cannot take the tool from others.
 */
export class ToolGuards {
	/** An evicted guard is shut down: its rolling-window timers stop with it. */
	private readonly guards: LRUCache<string, CircuitBreaker<[Run], unknown>>;

	constructor(private readonly options: ToolGuardOptions) {
		this.guards = new LRUCache({ max: options.maxGuards, dispose: guard => guard.shutdown() });
	}

	async run<T>(key: string, run: () => Promise<T>): Promise<T> {
		try {
			return (await this.guardFor(key).fire(run)) as T;
		} catch (err) {
			const code = (err as { code?: string }).code;
			if (code === "EOPENBREAKER")
				throw new ToolFailure(
					"upstream_error",
					"circuit open: the tool's upstream keeps failing; retry later"
				);
			if (code === "ESEMLOCKED") throw new ToolFailure("upstream_error", "tool at capacity; retry later");
			throw err;
		}
	}

	shutdown(): void {
		this.guards.clear();
	}

	private guardFor(key: string) {
		let guard = this.guards.get(key);
		if (guard) return guard;
		guard = new CircuitBreaker((run: Run) => run(), {
			...this.options,
			timeout: false,
			errorFilter: (err: unknown) => !isUpstreamFailure(err)
		});
		this.guards.set(key, guard);
		return guard;
	}
}
