import { runScript, type RedisClient } from "../redis";
import type { ProbeSchedule } from "./probe-schedule";

/** Reads and moves the due entries in one step, so two nodes never claim the same tool. */
const CLAIM_SCRIPT = `
local due = redis.call('ZRANGE', KEYS[1], '-inf', ARGV[1], 'BYSCORE', 'LIMIT', 0, tonumber(ARGV[3]))
for _, id in ipairs(due) do redis.call('ZADD', KEYS[1], ARGV[2], id) end
return due
`;

/** One sorted set of tool ids scored by the time of their next check (ms). */
export class RedisProbeSchedule implements ProbeSchedule {
	private readonly key: string;

	constructor(
		private readonly redis: RedisClient,
		prefix: string
	) {
		this.key = `${prefix}probe-schedule`;
	}

	async schedule(toolId: string, at: number): Promise<void> {
		await this.redis.zadd(this.key, at, toolId);
	}

	async remove(toolId: string): Promise<void> {
		await this.redis.zrem(this.key, toolId);
	}

	async claimDue(now: number, claimMs: number, limit: number): Promise<string[]> {
		return (await runScript(
			this.redis,
			CLAIM_SCRIPT,
			1,
			this.key,
			String(now),
			String(now + claimMs),
			String(limit)
		)) as string[];
	}

	async size(): Promise<number> {
		return this.redis.zcard(this.key);
	}
}
