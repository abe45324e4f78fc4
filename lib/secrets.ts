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

/**
 * Where a tool's secrets are sent: its type and the origin of its `url` (or the `source_id` of an MCP
 * tool). A stored secret may follow a patch only while this stays the same.
 */
export function upstreamOf(type: string, config: JsonObject): string {
	const url =
		typeof config.url === "string" && URL.canParse(config.url) ? new URL(config.url).origin : config.url;
	return JSON.stringify([type, url ?? null, config.source_id ?? null]);
}

/**
 * Fields (`config.<path>`) of the secrets in `config` that `patch` does not give in clear: kept from
 * the stored tool, or sent back masked. After an upstream change each must be given again, or a
 * tenant who can edit the tool but never saw its secret could send that secret to a host of its own.
 */
export function secretsNotGiven(
	config: JsonObject,
	patch: unknown,
	path = "config",
	parentKey?: string
): string[] {
	const given =
		patch !== null && typeof patch === "object" && !Array.isArray(patch) ? (patch as JsonObject) : {};
	const fields: string[] = [];
	for (const [key, value] of Object.entries(config)) {
		const field = `${path}.${key}`;
		if (typeof value === "string" && isSecret(key, parentKey)) {
			if (typeof given[key] !== "string" || given[key] === MASK) fields.push(field);
		} else if (value && typeof value === "object" && !Array.isArray(value))
			fields.push(...secretsNotGiven(value as JsonObject, given[key], field, key));
	}
	return fields;
}
