import type Redis from "ioredis";
import type { Outbox } from "./outbox";

/** Appends and trims to the bound in one step, so concurrent pushes from several nodes never overshoot. */
const PUSH_SCRIPT = `
local over = redis.call('RPUSH', KEYS[1], ARGV[1]) - tonumber(ARGV[2])
if over > 0 then
  redis.call('LTRIM', KEYS[1], over, -1)
  return over
end
return 0
`;

/** Layout under the prefix: `outbox` → list of frames, oldest at the head. Survives a notifier restart. */
export class RedisOutbox implements Outbox {
	private readonly key: string;

	constructor(
		private readonly redis: Redis,
		prefix: string,
		private readonly max: number
	) {
		this.key = `${prefix}outbox`;
	}

	async push(frame: string): Promise<number> {
		return (await this.redis.eval(PUSH_SCRIPT, 1, this.key, frame, this.max)) as number;
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
}
