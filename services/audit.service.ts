import type { Context, Service, ServiceSchema } from "moleculer";
import { AuditMixin, type AuditLocals, type AuditMethods, type AuditSettings } from "../mixins/audit.mixin";
import { RedisMixin, type RedisLocals, type RedisSettings } from "../mixins/redis.mixin";
import { TenantScopeMixin, type TenantScopeMethods } from "../mixins/tenant-scope.mixin";
import { AUDIT_ID_PATTERN, type AuditPage } from "../lib/audit/audit-log";
import { badRequest } from "../lib/errors";
import type { CallerMeta } from "../types/wire";

interface AuditListSettings {
	/** Page size of `audit.list` when the caller gives none. */
	defaultPageSize: number;
	/** Larger page sizes are clamped to this. */
	maxPageSize: number;
}

export type AuditServiceSettings = AuditListSettings & RedisSettings & AuditSettings;

type AuditThis = Service<AuditServiceSettings> &
	TenantScopeMethods &
	AuditMethods &
	RedisLocals &
	AuditLocals;

interface ListParams {
	since?: string;
	limit?: number;
	cursor?: string;
	action?: string;
	target?: string;
}

/**
 * Reads the audit trail. Entries are written by the services that make the changes (through
 * AuditMixin), never through an action: no API can add, alter or remove one.
 */
const AuditService: ServiceSchema<
	AuditListSettings,
	TenantScopeMethods & AuditMethods,
	AuditLocals & RedisLocals,
	AuditThis
> = {
	name: "audit",
	mixins: [AuditMixin(), RedisMixin(), TenantScopeMixin()],

	settings: {
		defaultPageSize: 50,
		maxPageSize: 200
	},

	actions: {
		/** The caller's tenant's entries, newest first. */
		list: {
			params: {
				since: { type: "string", max: 64, optional: true },
				limit: { type: "number", integer: true, positive: true, convert: true, optional: true },
				cursor: { type: "string", max: 64, optional: true },
				action: { type: "string", max: 64, optional: true },
				target: { type: "string", max: 200, optional: true }
			},
			handler(this: AuditThis, ctx: Context<ListParams, CallerMeta>): Promise<AuditPage> {
				const { since, cursor, action, target } = ctx.params;
				const sinceMs = since === undefined ? undefined : Date.parse(since);
				if (sinceMs !== undefined && Number.isNaN(sinceMs))
					throw badRequest("since must be an ISO-8601 date-time", "INVALID_SINCE");
				if (cursor !== undefined && !AUDIT_ID_PATTERN.test(cursor))
					throw badRequest("cursor is invalid", "INVALID_CURSOR");
				const limit = Math.min(ctx.params.limit ?? this.settings.defaultPageSize, this.settings.maxPageSize);
				return this.auditLog.list(this.tenantOf(ctx), { sinceMs, limit, cursor, action, target });
			}
		}
	}
};

export default AuditService;
