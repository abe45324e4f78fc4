import type { Service, ServiceSchema } from "moleculer";
import { connectRedis, type RedisClient } from "../lib/redis";
import { config } from "../lib/config";

export interface RedisSettings {
	/** Redis connection URL (`redis+cluster://` for a cluster); unset = the service keeps its state in memory (embedded default). */
	redisUrl?: string;
	/** Key namespace of this deployment. */
	redisPrefix: string;
}

export interface RedisLocals {
	/** The service's own connection, or null on the embedded default. */
	redis: RedisClient | null;
}

/**
 * Gives a service its own Redis connection when `REDIS_URL` is set. Services build their stores
 * from `this.redis` in `created` (after this mixin's `created`) and it is closed after their `stopped`.
 */
export function RedisMixin(): Partial<ServiceSchema> {
	const mixin: Partial<ServiceSchema<RedisSettings, object, RedisLocals>> = {
		settings: {
			redisUrl: config().redisUrl,
			redisPrefix: config().redisPrefix
		},
		created(this: Service<RedisSettings> & RedisLocals) {
			this.redis = this.settings.redisUrl ? connectRedis(this.settings.redisUrl, this.logger) : null;
		},
		async stopped(this: Service<RedisSettings> & RedisLocals) {
			await this.redis?.quit().catch(() => undefined);
		}
	};
	return mixin as Partial<ServiceSchema>;
}
