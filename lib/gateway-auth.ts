import type { IncomingHttpHeaders } from "http";
import { LRUCache } from "lru-cache";
import { matchesDigest, parseApiKey, sha256 } from "./credentials";
import { badRequest, forbidden, lacksScope, rateLimited, unauthorized } from "./errors";
import type { RateLimiter } from "./rate-limiter";
import type { KeyStore } from "./store/key-store";
import { TENANT_ID_PATTERN } from "./tenancy";
import { SCOPES, type ApiKeyRecord, type CallerMeta, type Scope } from "../types/wire";

export interface GatewayAuthOptions {
	keyStore: KeyStore;
	/** Shared secret of trusted services; unset disables service-token authentication. */
	serviceToken?: string;
	/** Per-tenant request limit; null admits every request. */
	rateLimiter: RateLimiter | null;
	/** Throws a 503 when a dependency of the checks (Redis) is down, so none waits on it. */
	reachable?: { require(): void };
	/** Told when recording a key's last use fails (the request is not held up by it). */
	onKeyUseError(err: unknown): void;
}

/** `last_used_at` is exact to this much: writing it on every request would cost a Redis write each. */
const KEY_USE_RESOLUTION_MS = 60000;

/** Every scope: what the service token grants. Shared, so no request copies it. */
const ALL_SCOPES: readonly Scope[] = Object.freeze([...SCOPES]);

const header = (headers: IncomingHttpHeaders, name: string): string | undefined => {
	const value = headers[name];
	return Array.isArray(value) ? value[0] : value;
};

/**
 * Who is calling and whether they may: identify the credential, count the request against the
 * tenant's rate limit, check the scope. REST routes, `/mcp` and WebSocket upgrades all pass here,
 * in this order, so each refuses the same request with the same error.
 */
export class GatewayAuth {
	/** SHA-256 of the service token, computed once: every request compares against it. */
	readonly serviceTokenDigest: Buffer | null;
	/** Keys whose use this node recorded within the last KEY_USE_RESOLUTION_MS. */
	private readonly recentlyUsed = new LRUCache<string, true>({ max: 10000, ttl: KEY_USE_RESOLUTION_MS });

	constructor(private readonly options: GatewayAuthOptions) {
		this.serviceTokenDigest = options.serviceToken ? sha256(options.serviceToken) : null;
	}

	/** Identifies the caller, counts the request against its tenant's limit and, given one, checks `scope`. */
	async admit(headers: IncomingHttpHeaders, scope?: Scope): Promise<CallerMeta> {
		this.options.reachable?.require();
		const identity = await this.identify(headers);
		if (this.options.rateLimiter) {
			const decision = await this.options.rateLimiter.hit(identity.tenant_id!);
			if (!decision.allowed) throw rateLimited(decision.retryAfter);
		}
		if (scope) this.requireScope(identity, scope);
		return identity;
	}

	/** Throws unless the identity holds `scope` (an undefined scope is denied: authorization denies by default). */
	requireScope(identity: CallerMeta, scope: Scope | undefined): void {
		if (!scope || !identity.scopes?.includes(scope)) throw lacksScope(scope ?? "unknown");
	}

	/** Resolves the credential to an identity: service token + headers, or an API key. */
	async identify(headers: IncomingHttpHeaders): Promise<CallerMeta> {
		const credential = /^Bearer\s+(\S+)$/i.exec(header(headers, "authorization") ?? "")?.[1];
		if (!credential) throw unauthorized("Missing Bearer credential");
		const tenantHeader = header(headers, "x-tenant-id");
		const agentHeader = header(headers, "x-agent-id") || null;
		if (agentHeader !== null && agentHeader.length > 128)
			throw badRequest("X-Agent-ID is too long", "INVALID_AGENT");

		if (this.serviceTokenDigest && matchesDigest(credential, this.serviceTokenDigest)) {
			if (!tenantHeader)
				throw badRequest("X-Tenant-ID is required with the service token", "TENANT_REQUIRED");
			if (!TENANT_ID_PATTERN.test(tenantHeader)) throw badRequest("X-Tenant-ID is invalid", "INVALID_TENANT");
			return { tenant_id: tenantHeader, agent_id: agentHeader, scopes: ALL_SCOPES, auth: "service_token" };
		}

		const parsed = parseApiKey(credential);
		const record = parsed && (await this.options.keyStore.get(parsed.keyId));
		if (
			!parsed ||
			!record ||
			!matchesDigest(parsed.secret, Buffer.from(record.secret_hash, "hex")) ||
			record.revoked_at
		)
			throw unauthorized("Unknown or revoked credential");
		if (tenantHeader && tenantHeader !== record.tenant_id)
			throw forbidden("This key does not act for the requested tenant");
		if (record.agent_id && agentHeader && agentHeader !== record.agent_id)
			throw forbidden("This key is bound to another agent");
		this.noteKeyUse(record);
		return {
			tenant_id: record.tenant_id,
			agent_id: record.agent_id ?? agentHeader,
			scopes: record.scopes,
			auth: "api_key",
			key_id: record.key_id
		};
	}

	/** Records a key's last use, at most once a minute per key and node: a request never waits for it. */
	private noteKeyUse(record: ApiKeyRecord): void {
		if (this.recentlyUsed.has(record.key_id)) return;
		this.recentlyUsed.set(record.key_id, true);
		this.options.keyStore
			.touch(record.tenant_id, record.key_id, new Date().toISOString())
			.catch((err: unknown) => this.options.onKeyUseError(err));
	}
}
