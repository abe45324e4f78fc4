import type { ApiKeyRecord } from "../../types/wire";

/** Persistence of API keys (hashed secrets only). */
export interface KeyStore {
	create(record: ApiKeyRecord): Promise<void>;
	get(keyId: string): Promise<ApiKeyRecord | null>;
	/** Marks the key revoked; resolves the updated record, or null when unknown. */
	revoke(keyId: string, at: string): Promise<ApiKeyRecord | null>;
	/** The tenant's keys, oldest first, with `last_used_at` (null when never used). */
	list(tenantId: string): Promise<(ApiKeyRecord & { last_used_at: string | null })[]>;
	/** Records that the key authenticated a request at `at` (callers write it at most once a minute). */
	touch(tenantId: string, keyId: string, at: string): Promise<void>;
}
