import type Redis from "ioredis";
import type { McpTaskIndex, McpTaskIndexOptions } from "./task-index";

/** Adds an id at the next position, keeps the newest ARGV[2] and renews the owner's expiry. */
const ADD = `
local position = redis.call('INCR', KEYS[2])
redis.call('ZADD', KEYS[1], position, ARGV[1])
redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -(tonumber(ARGV[2]) + 1))
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return position
`;

/**
 * Shared by every gateway node, so a task created on one node is listed and read on any other.
 * Layout under the prefix: `mcp-tasks:{owner}` sorted set of task ids by position; `mcp-tasks-seq`
 * the position counter.
 */
export class RedisMcpTaskIndex implements McpTaskIndex {
	constructor(
		private readonly redis: Redis,
		private readonly prefix: string,
		private readonly options: McpTaskIndexOptions
	) {}

	private key = (owner: string) => `${this.prefix}mcp-tasks:{${owner}}`;

	async add(owner: string, taskId: string): Promise<void> {
		await this.redis.eval(
			ADD,
			2,
			this.key(owner),
			`${this.prefix}mcp-tasks-seq`,
			taskId,
			this.options.maxPerOwner,
			this.options.ttlMs
		);
	}

	async has(owner: string, taskId: string): Promise<boolean> {
		return (await this.redis.zscore(this.key(owner), taskId)) !== null;
	}

	async page(owner: string, before: number | undefined, limit: number) {
		const flat = await this.redis.zrevrangebyscore(
			this.key(owner),
			before === undefined ? "+inf" : `(${before}`,
			"-inf",
			"WITHSCORES",
			"LIMIT",
			0,
			limit
		);
		const ids: string[] = [];
		for (let i = 0; i < flat.length; i += 2) ids.push(flat[i]);
		return { ids, ...(ids.length === limit ? { last: Number(flat[flat.length - 1]) } : {}) };
	}

	async remove(owner: string, taskIds: string[]): Promise<void> {
		if (taskIds.length) await this.redis.zrem(this.key(owner), ...taskIds);
	}
}
