import type { Context, Service, ServiceSchema } from "moleculer";
import { AuditMixin, type AuditLocals, type AuditMethods, type AuditSettings } from "../mixins/audit.mixin";
import { RedisMixin, type RedisLocals, type RedisSettings } from "../mixins/redis.mixin";
import { TenantScopeMixin, type TenantScopeMethods } from "../mixins/tenant-scope.mixin";
import { formatApiKey, sha256 } from "../lib/credentials";
import { badRequest, forbidden, notFound } from "../lib/errors";
import { newId, newSecret } from "../lib/ids";
import type { KeyStore } from "../lib/store/key-store";
import { keyStoreFor } from "../lib/store/key-backend";
import { GLOBAL_TENANT, TENANT_ID_PATTERN } from "../lib/tenancy";
import { SCOPES, type ApiKeyRecord, type CallerMeta, type Scope } from "../types/wire";

interface KeysMethods extends AuditMethods, TenantScopeMethods {
	checkMintingRights(ctx: Context<unknown, CallerMeta>, params: CreateParams): Promise<void>;
}

interface KeysLocals extends RedisLocals, AuditLocals {
	keyStore: KeyStore;
}

type KeysThis = Service<RedisSettings & AuditSettings> & KeysMethods & KeysLocals;

interface CreateParams {
	tenant_id: string;
	scopes: Scope[];
	agent_id?: string;
	name?: string;
}

/** A key as every caller sees it: never its secret's hash. */
const shown = ({ secret_hash: _hidden, ...rest }: ApiKeyRecord & { last_used_at?: string | null }) => rest;

/**
 * API keys: minted, listed and revoked here; the gateway reads the same store to authenticate
 * (lib/gateway-auth.ts). Callers with an API key act within their key: its tenant, its scopes,
 * its agent. Trusted callers (the service token, other nodes) may mint for any tenant.
 */
const KeysService: ServiceSchema<object, KeysMethods, KeysLocals, KeysThis> = {
	name: "keys",
	mixins: [AuditMixin(), TenantScopeMixin(), RedisMixin()],

	actions: {
		/** Mints a key; its secret is in the answer's `api_key` and nowhere else, ever. */
		create: {
			params: {
				$$strict: true,
				tenant_id: { type: "string", pattern: TENANT_ID_PATTERN },
				scopes: { type: "array", items: { type: "enum", values: SCOPES }, min: 1, unique: true },
				agent_id: { type: "string", min: 1, max: 128, optional: true },
				name: { type: "string", max: 128, optional: true }
			},
			async handler(this: KeysThis, ctx: Context<CreateParams, CallerMeta>) {
				const { tenant_id, scopes, agent_id, name } = ctx.params;
				await this.checkMintingRights(ctx, ctx.params);
				const secret = newSecret();
				const record: ApiKeyRecord = {
					key_id: newId(),
					tenant_id,
					agent_id: agent_id ?? null,
					name: name ?? null,
					scopes,
					secret_hash: sha256(secret).toString("hex"),
					created_at: new Date().toISOString(),
					revoked_at: null
				};
				await this.keyStore.create(record);
				await this.recordAudit(
					this.auditDraft(ctx, tenant_id, "key.create", `key:${record.key_id}`, "success", {
						details: { scopes, agent_id: record.agent_id, name: record.name }
					})
				);
				return { ...shown(record), api_key: formatApiKey(record.key_id, secret) };
			}
		},

		/** The caller's tenant's keys, oldest first, with when each was last used. */
		list: {
			params: {},
			async handler(this: KeysThis, ctx: Context<object, CallerMeta>) {
				const records = await this.keyStore.list(this.tenantOf(ctx));
				return { items: records.map(shown) };
			}
		},

		/** Revokes a key; to a caller with an API key, another tenant's key is reported as unknown. */
		revoke: {
			params: { key_id: { type: "string", max: 64 } },
			async handler(this: KeysThis, ctx: Context<{ key_id: string }, CallerMeta>) {
				const record = await this.keyStore.get(ctx.params.key_id);
				const visible = record && (ctx.meta.auth !== "api_key" || record.tenant_id === ctx.meta.tenant_id);
				if (!record || !visible) throw notFound("API key", ctx.params.key_id);
				await this.keyStore.revoke(record.key_id, new Date().toISOString());
				await this.recordAudit(
					this.auditDraft(ctx, record.tenant_id, "key.revoke", `key:${record.key_id}`, "success")
				);
				return null;
			}
		}
	},

	methods: {
		/** A key never mints a wider key than itself: same tenant, a subset of its scopes, its own agent. */
		async checkMintingRights(
			this: KeysThis,
			ctx: Context<unknown, CallerMeta>,
			{ tenant_id, scopes, agent_id }: CreateParams
		) {
			if (tenant_id === GLOBAL_TENANT)
				throw badRequest("Keys cannot act for the global tenant", "INVALID_TENANT");
			if (ctx.meta.auth !== "api_key") return;
			if (tenant_id !== ctx.meta.tenant_id) throw forbidden("A key may only create keys of its own tenant");
			const missing = scopes.filter(scope => !ctx.meta.scopes?.includes(scope));
			if (missing.length) throw forbidden("A key cannot grant scopes it does not have", { scopes: missing });
			const caller = ctx.meta.key_id ? await this.keyStore.get(ctx.meta.key_id) : null;
			if (caller?.agent_id && agent_id !== caller.agent_id)
				throw forbidden("A key bound to an agent may only create keys bound to the same agent", {
					agent_id: caller.agent_id
				});
		}
	},

	created(this: KeysThis) {
		this.keyStore = keyStoreFor(this.broker, this.redis, this.settings.redisPrefix);
	}
};

export default KeysService;
