import { schedulingShards, slotTag, type RedisClient, runScript } from "../redis";
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
 * The key prefix of one scheduling shard: the task queue keeps a shard's tenant queues, tasks,
 * rotation, leases and outbox under it, so each of its scripts touches one cluster slot. On a single
 * Redis there is one shard and the prefix is the deployment's own.
 */
export const shardPrefix = (redis: RedisClient, prefix: string, shard: number): string =>
	schedulingShards(redis) === 1 ? prefix : `${prefix}${slotTag(redis, `q${shard}`)}:`;

/**
 * Layout under each shard's prefix: `outbox` → list of frames, oldest at the head; `outbox:dropped` →
 * count of frames dropped by the bound. Survives a notifier restart. On a cluster there is one such
 * list per scheduling shard (frames of one task always in its tenant's shard, so in order); `peek`
 * serves the shards in turn, and the bound applies per shard.
 */
export class RedisOutbox implements Outbox {
	readonly shards: number;
	readonly channel: string;
	/** The shard the last `peek` read, which the next `ack` trims. */
	private peeked = 0;

	constructor(
		private readonly redis: RedisClient,
		private readonly prefix: string,
		readonly max: number
	) {
		this.shards = schedulingShards(redis);
		this.channel = framesChannel(prefix);
	}

	/** The list and drop counter of a shard; the task queue's scripts record frames there. */
	keys(shard: number): [list: string, dropped: string] {
		const base = shardPrefix(this.redis, this.prefix, shard);
		return [`${base}outbox`, `${base}outbox:dropped`];
	}

	/** A frame pushed directly has no task's shard: it goes to the first. */
	push(frame: string): Promise<number> {
		return runScript(this.redis, PUSH_SCRIPT, 2, ...this.keys(0), frame, this.channel, this.max).then(Number);
	}

	async peek(n: number): Promise<string[]> {
		for (let i = 0; i < this.shards; i++) {
			const shard = (this.peeked + i) % this.shards;
			const frames = await this.redis.lrange(this.keys(shard)[0], 0, n - 1);
			if (frames.length) {
				this.peeked = shard;
				return frames;
			}
		}
		return [];
	}

	async ack(n: number): Promise<void> {
		await this.redis.ltrim(this.keys(this.peeked)[0], n, -1);
		// The next peek starts at the following shard, so a busy shard cannot hold the others back.
		this.peeked = (this.peeked + 1) % this.shards;
	}

	async size(): Promise<number> {
		const sizes = await Promise.all(this.shardList().map(shard => this.redis.llen(this.keys(shard)[0])));
		return sizes.reduce((a, b) => a + b, 0);
	}

	async dropped(): Promise<number> {
		const counts = await Promise.all(this.shardList().map(shard => this.redis.get(this.keys(shard)[1])));
		return counts.reduce((sum, count) => sum + Number(count ?? 0), 0);
	}

	private shardList = () => Array.from({ length: this.shards }, (_, shard) => shard);
}
