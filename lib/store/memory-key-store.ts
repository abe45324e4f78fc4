import type { ApiKeyRecord } from "../../types/wire";
import type { KeyStore } from "./key-store";

export class MemoryKeyStore implements KeyStore {
	private readonly keys = new Map<string, ApiKeyRecord>();
	private readonly lastUsed = new Map<string, string>();

	async create(record: ApiKeyRecord): Promise<void> {
		this.keys.set(record.key_id, record);
	}

	async get(keyId: string): Promise<ApiKeyRecord | null> {
		return this.keys.get(keyId) ?? null;
	}

	async revoke(keyId: string, at: string): Promise<ApiKeyRecord | null> {
		const current = this.keys.get(keyId);
		if (!current) return null;
		const revoked = { ...current, revoked_at: current.revoked_at ?? at };
		this.keys.set(keyId, revoked);
		return revoked;
	}

	async list(tenantId: string) {
		return [...this.keys.values()]
			.filter(record => record.tenant_id === tenantId)
			.map(record => ({ ...record, last_used_at: this.lastUsed.get(record.key_id) ?? null }));
	}

	async touch(_tenantId: string, keyId: string, at: string): Promise<void> {
		this.lastUsed.set(keyId, at);
	}
}
