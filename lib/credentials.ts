import { createHash, timingSafeEqual } from "crypto";

/** API keys read `trk_<key_id>.<secret>`: the key id finds the record, the secret proves possession. */
const API_KEY_PATTERN = /^trk_([0-9a-f-]{36})\.([A-Za-z0-9_-]{20,128})$/;

export const formatApiKey = (keyId: string, secret: string): string => `trk_${keyId}.${secret}`;

export function parseApiKey(credential: string): { keyId: string; secret: string } | null {
	const match = API_KEY_PATTERN.exec(credential);
	return match ? { keyId: match[1], secret: match[2] } : null;
}

export const sha256 = (value: string): string => createHash("sha256").update(value).digest("hex");

/** Constant-time equality of two secrets (digests first, so lengths never leak either). */
export function secretsEqual(a: string, b: string): boolean {
	return timingSafeEqual(createHash("sha256").update(a).digest(), createHash("sha256").update(b).digest());
}

/** Constant-time check of a secret against a stored SHA-256 hex digest. */
export function matchesHash(secret: string, hexDigest: string): boolean {
	const expected = Buffer.from(hexDigest, "hex");
	const actual = createHash("sha256").update(secret).digest();
	return expected.length === actual.length && timingSafeEqual(expected, actual);
}
