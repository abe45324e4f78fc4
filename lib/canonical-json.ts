import canonicalize from "canonicalize";

/** Canonical JSON texts of the values made constant with `constantJson`. */
const constants = new WeakMap<object, string>();

function deepFreeze(value: unknown): void {
	if (value === null || typeof value !== "object" || Object.isFrozen(value)) return;
	Object.freeze(value);
	for (const member of Object.values(value)) deepFreeze(member);
}

/**
 * Deep-freezes `value` and remembers its canonical JSON, which `canonicalJson` then reuses wherever the
 * value is a member: a tool type's default parameters are shared by every tool that gives none, and
 * are most of what hashing such a definition serializes. Frozen, because a remembered text of a value
 * that changed afterwards would give a wrong hash.
 */
export function constantJson<T extends object>(value: T): T {
	deepFreeze(value);
	constants.set(value, canonicalize(value)!);
	return value;
}

/**
 * `canonicalize(record)` (RFC 8785): members sorted by key, undefined ones left out, each value
 * serialized by `canonicalize` unless it is a constant whose text is known.
 */
export function canonicalJson(record: Record<string, unknown>): string {
	const members: string[] = [];
	for (const key of Object.keys(record).sort()) {
		const value = record[key];
		if (value === undefined || typeof value === "symbol") continue;
		const text = (value !== null && typeof value === "object" && constants.get(value)) || canonicalize(value);
		members.push(`${JSON.stringify(key)}:${text}`);
	}
	return `{${members.join(",")}}`;
}
