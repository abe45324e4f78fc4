import type { JsonObject } from "../types/wire";

/** Shown instead of a secret in every read; sent back unchanged on update, it keeps the stored value. */
export const MASK = "********";

const SECRET_KEY = /(token|secret|password|passwd|api[-_]?key|authorization|credential|cookie)/i;

/** Header values are always secret; elsewhere a key's name decides. */
export const isSecret = (key: string, parentKey: string | undefined) =>
	parentKey === "headers" || SECRET_KEY.test(key);

/** A copy of `config` with every secret string replaced by MASK. */
export function maskSecrets(config: JsonObject, parentKey?: string): JsonObject {
	const masked: JsonObject = {};
	for (const [key, value] of Object.entries(config)) {
		if (typeof value === "string" && isSecret(key, parentKey)) masked[key] = MASK;
		else if (value && typeof value === "object" && !Array.isArray(value))
			masked[key] = maskSecrets(value as JsonObject, key);
		else masked[key] = value;
	}
	return masked;
}

/** `next` with every MASK placeholder replaced by the secret stored at the same place in `stored`. */
export function restoreSecrets(next: JsonObject, stored: JsonObject | undefined): JsonObject {
	const restored: JsonObject = {};
	for (const [key, value] of Object.entries(next)) {
		const previous = stored?.[key];
		if (value === MASK && typeof previous === "string") restored[key] = previous;
		else if (value && typeof value === "object" && !Array.isArray(value))
			restored[key] = restoreSecrets(
				value as JsonObject,
				previous && typeof previous === "object" ? (previous as JsonObject) : undefined
			);
		else restored[key] = value;
	}
	return restored;
}
