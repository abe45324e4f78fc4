import { runScript, type RedisClient } from "../redis";
import type { McpTaskIndex, McpTaskIndexOptions } from "./task-index";

/**
 * Adds an id at the next position of its owner, keeps the newest ARGV[2] and renews the owner's
 * expiry. A counter that is gone (expired with its index) starts above the highest position kept.
 */
const ADD = `
if redis.call('EXISTS', KEYS[2]) == 0 then
  local top = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
  redis.call('SET', KEYS[2], top[2] or 0)
end
local position = redis.call('INCR', KEYS[2])
redis.call('ZADD', KEYS[1], position, ARGV[1])
redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -(tonumber(ARGV[2]) + 1))
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
return position
`;

/**
 * Shared by every gateway node, so a task created on one node is listed and read on any other.
 * Layout under the prefix: `mcp-tasks:{owner}` sorted set of task ids by position;
 * `mcp-tasks-seq:{owner}` its position counter, in the same cluster slot (the owner is the hash tag).
 */
export class RedisMcpTaskIndex implements McpTaskIndex {
	constructor(
		private readonly redis: RedisClient,
		private readonly prefix: string,
		private readonly options: McpTaskIndexOptions
	) {}

	private key = (owner: string) => `${this.prefix}mcp-tasks:{${owner}}`;

	async add(owner: string, taskId: string): Promise<void> {
		await runScript(
			this.redis,
			ADD,
			2,
			this.key(owner),
			`${this.prefix}mcp-tasks-seq:{${owner}}`,
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
