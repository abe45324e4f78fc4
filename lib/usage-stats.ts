import { slotTag, type RedisClient, runScript } from "./redis";
import { FAILURE_TYPES, type FailureType } from "../types/wire";

/** Upper bounds (ms) of the latency histogram buckets; the last bucket is everything slower. */
export const LATENCY_BUCKETS_MS = [
	1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 30000, 300000
];

export interface ExecutionOutcome {
	tenant_id: string;
	tool_id: string;
	status: "completed" | "failed";
	error_type?: FailureType;
	execution_time_ms: number;
}

export interface ToolUsage {
	tool_id: string;
	tenant_id: string;
	calls: number;
	completed: number;
	failed: number;
	failures: Record<FailureType, number>;
	latency_ms: { avg: number; max: number; p50: number; p95: number; p99: number };
}

type Counters = Map<string, number>;

const usageKey = (tenantId: string, toolId: string) => `${tenantId}\u0000${toolId}`;

/**
 * Usage counters per (tenant, tool). The hot path only bumps in-memory counters; with Redis they
 * are flushed in batches (HINCRBY) so every executor node adds into one shared hash per pair.
 */
export class UsageStats {
	private readonly pending = new Map<string, Counters>();
	private readonly maxMs = new Map<string, number>();
	private timer: NodeJS.Timeout | null = null;

	constructor(
		private readonly redis: RedisClient | null,
		private readonly prefix: string,
		flushIntervalMs = 1000
	) {
		if (redis)
			this.timer = setInterval(() => void this.flush().catch(() => undefined), flushIntervalMs).unref();
	}

	record(outcome: ExecutionOutcome): void {
		const key = usageKey(outcome.tenant_id, outcome.tool_id);
		let counters = this.pending.get(key);
		if (!counters) this.pending.set(key, (counters = new Map()));
		const bump = (field: string, by = 1) => counters!.set(field, (counters!.get(field) ?? 0) + by);
		const ms = outcome.execution_time_ms;
		bump("calls");
		bump(outcome.status);
		if (outcome.error_type) bump(`failure:${outcome.error_type}`);
		bump("latency_sum", ms);
		const bucket = LATENCY_BUCKETS_MS.findIndex(bound => ms <= bound);
		bump(`bucket:${bucket === -1 ? LATENCY_BUCKETS_MS.length : bucket}`);
		if (ms > (this.maxMs.get(key) ?? 0)) this.maxMs.set(key, ms);
	}

	async get(tenantId: string, toolId: string): Promise<ToolUsage> {
		const key = usageKey(tenantId, toolId);
		const counters: Counters = new Map(this.pending.get(key));
		let max = this.maxMs.get(key) ?? 0;
		if (this.redis) {
			const stored = await this.redis.hgetall(this.redisKey(tenantId, toolId));
			for (const [field, value] of Object.entries(stored)) {
				if (field === "latency_max") max = Math.max(max, Number(value));
				else counters.set(field, (counters.get(field) ?? 0) + Number(value));
			}
		}
		return summarize(tenantId, toolId, counters, max);
	}

	/** Moves the pending counters to Redis; a no-op on the embedded default. */
	async flush(): Promise<void> {
		if (!this.redis || this.pending.size === 0) return;
		// One command per write, auto-pipelined (per node on a cluster, where the hashes are in many slots).
		const redis = this.redis;
		const writes: Promise<unknown>[] = [];
		for (const [key, counters] of this.pending) {
			const [tenantId, toolId] = key.split("\u0000");
			const hash = this.redisKey(tenantId, toolId);
			// Latencies are fractional milliseconds, which HINCRBY refuses; the counts are whole.
			for (const [field, value] of counters)
				writes.push(
					Number.isInteger(value) ? redis.hincrby(hash, field, value) : redis.hincrbyfloat(hash, field, value)
				);
			writes.push(
				runScript(
					redis,
					"if tonumber(redis.call('HGET', KEYS[1], 'latency_max') or '0') < tonumber(ARGV[1]) then redis.call('HSET', KEYS[1], 'latency_max', ARGV[1]) end",
					1,
					hash,
					String(this.maxMs.get(key) ?? 0)
				)
			);
		}
		this.pending.clear();
		this.maxMs.clear();
		await Promise.all(writes);
	}

	async close(): Promise<void> {
		if (this.timer) clearInterval(this.timer);
		await this.flush();
	}

	private redisKey(tenantId: string, toolId: string) {
		return `${this.prefix}usage:${slotTag(this.redis!, tenantId)}:${toolId}`;
	}
}

function summarize(tenantId: string, toolId: string, counters: Counters, max: number): ToolUsage {
	const count = (field: string) => counters.get(field) ?? 0;
	const calls = count("calls");
	const buckets = Array.from({ length: LATENCY_BUCKETS_MS.length + 1 }, (_, i) => count(`bucket:${i}`));
	// A percentile is reported as the upper bound of the bucket it falls in (never above the max seen).
	const percentile = (q: number) => {
		if (calls === 0) return 0;
		let seen = 0;
		for (let i = 0; i < buckets.length; i++) {
			seen += buckets[i];
			if (seen >= q * calls) return Math.min(LATENCY_BUCKETS_MS[i] ?? max, max);
		}
		return max;
	};
	return {
		tool_id: toolId,
		tenant_id: tenantId,
		calls,
		completed: count("completed"),
		failed: count("failed"),
		failures: Object.fromEntries(FAILURE_TYPES.map(t => [t, count(`failure:${t}`)])) as Record<
			FailureType,
			number
		>,
		latency_ms: {
			avg: calls ? Math.round((count("latency_sum") / calls) * 100) / 100 : 0,
			max,
			p50: percentile(0.5),
			p95: percentile(0.95),
			p99: percentile(0.99)
		}
	};
}
