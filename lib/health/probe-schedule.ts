/**
 * When unreachable tools are probed again. Every registry node polls `claimDue`; a claim moves the
 * tool's next check `claimMs` ahead, so exactly one node probes it now and, should that probe be
 * lost with its node, another claims it again later. Recording the probe's outcome reschedules
 * (still unreachable) or removes (healthy, deleted) the entry.
 */
export interface ProbeSchedule {
	/** Sets (or moves) the tool's next check. */
	schedule(toolId: string, at: number): Promise<void>;
	remove(toolId: string): Promise<void>;
	/** Up to `limit` tools whose check is due at `now`, claimed until `now + claimMs`. */
	claimDue(now: number, claimMs: number, limit: number): Promise<string[]>;
	/** Tools waiting for a check: the unreachable ones. */
	size(): Promise<number>;
}

export interface BackoffSettings {
	/** Delay after the first failed probe. */
	initialMs: number;
	/** The delay doubles after each failed probe up to this. */
	maxMs: number;
}

/** The next delay: the first one after a healthy (or unknown) state, else the last one doubled. */
export function nextProbeDelay(previousDelayMs: number | undefined, backoff: BackoffSettings): number {
	if (previousDelayMs === undefined || previousDelayMs <= 0) return backoff.initialMs;
	return Math.min(backoff.maxMs, Math.max(backoff.initialMs, previousDelayMs * 2));
}
