import type { ProbeSchedule } from "./probe-schedule";

/** The embedded schedule: one process, one map. */
export class MemoryProbeSchedule implements ProbeSchedule {
	private readonly due = new Map<string, number>();

	async schedule(toolId: string, at: number): Promise<void> {
		this.due.set(toolId, at);
	}

	async remove(toolId: string): Promise<void> {
		this.due.delete(toolId);
	}

	async claimDue(now: number, claimMs: number, limit: number): Promise<string[]> {
		const claimed = [...this.due]
			.filter(([, at]) => at <= now)
			// Redis' order: by time, then by id.
			.sort((a, b) => a[1] - b[1] || (a[0] < b[0] ? -1 : 1))
			.slice(0, limit)
			.map(([id]) => id);
		for (const id of claimed) this.due.set(id, now + claimMs);
		return claimed;
	}

	async size(): Promise<number> {
		return this.due.size;
	}
}
