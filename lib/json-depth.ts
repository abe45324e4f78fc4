/**
 * The deepest JSON a request body may nest. Parsing is iterative, but everything after it (revivers,
 * validation, canonical hashing, serialising to other nodes) recurses, and a 1 MiB body of `[` is
 * 500,000 levels: refused before parsing, in one linear pass over the bytes.
 */
export const MAX_JSON_DEPTH = 64;

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_ARRAY = 0x5b;
const OPEN_OBJECT = 0x7b;
const CLOSE_ARRAY = 0x5d;
const CLOSE_OBJECT = 0x7d;

/** Whether the JSON text in `bytes` nests arrays and objects deeper than `max` (strings are skipped). */
export function nestsDeeperThan(bytes: Uint8Array, max = MAX_JSON_DEPTH): boolean {
	let depth = 0;
	let inString = false;
	for (let i = 0; i < bytes.length; i++) {
		const byte = bytes[i];
		if (inString) {
			if (byte === BACKSLASH) i++;
			else if (byte === QUOTE) inString = false;
		} else if (byte === QUOTE) inString = true;
		else if (byte === OPEN_ARRAY || byte === OPEN_OBJECT) {
			if (++depth > max) return true;
		} else if (byte === CLOSE_ARRAY || byte === CLOSE_OBJECT) depth--;
	}
	return false;
}

/** body-parser `verify` hook: a body nested too deeply fails like malformed JSON (400), unparsed. */
export function refuseDeepJson(_req: unknown, _res: unknown, body: Buffer): void {
	if (nestsDeeperThan(body))
		throw Object.assign(new Error(`JSON is nested deeper than ${MAX_JSON_DEPTH} levels`), {
			type: "entity.too.deep"
		});
}
