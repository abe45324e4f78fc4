import type Redis from "ioredis";
import type { Outbox } from "./outbox";

/**
 * Lua that records one frame: appended to the outbox list, trimmed to the bound (counting what was
 * dropped), published for live listeners. Scripts of the task queue embed it, so that a status change
 * and its frame commit together. Expects `record_frame(outbox_key, dropped_key, channel, max, frame)`.
 */
export const RECORD_FRAME_LUA = `
local function record_frame(outbox, dropped, channel, max, frame)
  local over = redis.call('RPUSH', outbox, frame) - tonumber(max)
  if over > 0 then
    redis.call('LTRIM', outbox, over, -1)
    redis.call('INCRBY', dropped, over)
  end
  redis.call('PUBLISH', channel, frame)
  return math.max(over, 0)
end
`;

const PUSH_SCRIPT = `${RECORD_FRAME_LUA}
return record_frame(KEYS[1], KEYS[2], ARGV[2], ARGV[3], ARGV[1])
`;

/** Channel on which every recorded frame is published (wakes the leader, feeds UI clients). */
export const framesChannel = (prefix: string): string => `${prefix}task-frames`;

/**
 * Layout under the prefix: `outbox` → list of frames, oldest at the head; `outbox:dropped` → count of
 * frames dropped by the bound. Survives a notifier restart.
 */
export class RedisOutbox implements Outbox {
	readonly key: string;
	readonly droppedKey: string;
	readonly channel: string;

	constructor(
		private readonly redis: Redis,
		prefix: string,
		readonly max: number
	) {
		this.key = `${prefix}outbox`;
		this.droppedKey = `${prefix}outbox:dropped`;
		this.channel = framesChannel(prefix);
	}

	async push(frame: string): Promise<number> {
		return Number(
			await this.redis.eval(PUSH_SCRIPT, 2, this.key, this.droppedKey, frame, this.channel, this.max)
		);
	}

	async peek(n: number): Promise<string[]> {
		return this.redis.lrange(this.key, 0, n - 1);
	}

	async ack(n: number): Promise<void> {
		await this.redis.ltrim(this.key, n, -1);
	}

	async size(): Promise<number> {
		return this.redis.llen(this.key);
	}

	async dropped(): Promise<number> {
		return Number((await this.redis.get(this.droppedKey)) ?? 0);
	}
}
