import type { ApiKeyRecord } from "../../types/wire";
import type { KeyStore } from "./key-store";

export class MemoryKeyStore implements KeyStore {
	private readonly keys = new Map<string, ApiKeyRecord>();

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
}
