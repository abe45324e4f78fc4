import type { ToolHealth } from "../../types/wire";

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

/** Health of a tool no probe has looked at (and of types that call no upstream). */
export const UNKNOWN_HEALTH: ToolHealth = Object.freeze({ state: "unknown" }) as ToolHealth;

/** The health a probe result leads to at `now`; an unreachable upstream is due again with backoff. */
export function nextHealth(
	previous: ToolHealth | undefined,
	probed: Pick<ToolHealth, "state" | "error">,
	backoff: BackoffSettings,
	now: number
): ToolHealth {
	const checked_at = new Date(now).toISOString();
	if (probed.state !== "unreachable") return { state: probed.state, checked_at };
	const lastDelay =
		previous?.state === "unreachable" && previous.next_check_at && previous.checked_at
			? Date.parse(previous.next_check_at) - Date.parse(previous.checked_at)
			: undefined;
	return {
		state: "unreachable",
		checked_at,
		next_check_at: new Date(now + nextProbeDelay(lastDelay, backoff)).toISOString(),
		...(probed.error ? { error: probed.error } : {})
	};
}
