import type { Context, Service, ServiceSchema } from "moleculer";
import type { AuditAction, AuditActor, AuditDraft, AuditLog, AuditRetention } from "../lib/audit/audit-log";
import { sharedMemoryAuditLog } from "../lib/audit/memory-audit-log";
import { RedisAuditLog } from "../lib/audit/redis-audit-log";
import type { CallerMeta, JsonObject } from "../types/wire";
import type { RedisLocals, RedisSettings } from "./redis.mixin";
import { config } from "../lib/config";

export interface AuditSettings {
	audit: AuditRetention & {
		/** Share of executions recorded (1 = all, 0 = none); changes, keys and submissions are always recorded. */
		executionSampleRate: number;
	};
}

export interface AuditMethods {
	auditDraft(
		ctx: Context,
		tenantId: string,
		action: AuditAction,
		target: string,
		outcome: string,
		extra?: { definition_hash?: string; details?: JsonObject }
	): AuditDraft;
	/** Appends an entry for a step that has no store of its own to share (keys, executions); logs a failure. */
	recordAudit(draft: AuditDraft): Promise<void>;
}

export interface AuditLocals {
	/** The deployment's trail: Redis Streams with REDIS_URL, else the process's memory trail. */
	auditLog: AuditLog;
}

const DAY_MS = 24 * 3600 * 1000;

export const actorOf = (meta: CallerMeta): AuditActor => {
	const actor: AuditActor = { kind: meta.auth === "api_key" ? "key" : "service" };
	if (meta.key_id) actor.key_id = meta.key_id;
	if (meta.agent_id) actor.agent_id = meta.agent_id;
	return actor;
};

/**
 * Gives a service the deployment's audit trail and the helpers that build entries from the
 * caller's identity. It uses RedisMixin's connection, so it is listed before RedisMixin: Moleculer
 * runs the `created` handlers of mixins from the last listed to the first.
 */
export function AuditMixin(): Partial<ServiceSchema> {
	type This = Service<RedisSettings & AuditSettings> & RedisLocals & AuditLocals & AuditMethods;
	const mixin: Partial<ServiceSchema<AuditSettings, AuditMethods, AuditLocals, This>> = {
		settings: {
			audit: {
				// 30 days by default.
				maxAgeMs: config().auditRetentionDays * DAY_MS,
				// Per tenant, 100000 by default; Redis trims approximately (whole stream nodes), so a few more may stay.
				maxEntries: config().auditMaxEntries,
				// `all` (1) by default, `off` (0), or a share such as 0.1.
				executionSampleRate: config().auditExecutions
			}
		},
		methods: {
			auditDraft(ctx, tenantId, action, target, outcome, extra = {}) {
				const draft: AuditDraft = {
					tenant_id: tenantId,
					actor: actorOf(ctx.meta as CallerMeta),
					action,
					target,
					outcome
				};
				if (extra.definition_hash) draft.definition_hash = extra.definition_hash;
				if (extra.details) draft.details = extra.details;
				return draft;
			},
			async recordAudit(this: This, draft: AuditDraft) {
				await this.auditLog
					.append(draft)
					.catch(err =>
						this.logger.error(
							`Audit entry '${draft.action}' of tenant '${draft.tenant_id}' not recorded`,
							err
						)
					);
			}
		},
		created(this: This) {
			const { audit, redisPrefix, redisUrl } = this.settings;
			if (redisUrl && !this.redis) throw new Error("AuditMixin must be listed before RedisMixin");
			this.auditLog = this.redis
				? new RedisAuditLog(this.redis, redisPrefix, audit)
				: sharedMemoryAuditLog(this.broker, audit);
		}
	};
	return mixin as Partial<ServiceSchema>;
}
