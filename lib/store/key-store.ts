import type { ApiKeyRecord } from "../../types/wire";

/** Persistence of API keys (hashed secrets only). */
export interface KeyStore {
	create(record: ApiKeyRecord): Promise<void>;
	get(keyId: string): Promise<ApiKeyRecord | null>;
	/** Marks the key revoked; resolves the updated record, or null when unknown. */
	revoke(keyId: string, at: string): Promise<ApiKeyRecord | null>;
}
