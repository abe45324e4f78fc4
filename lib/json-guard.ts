/**
 * Checks on a JSON request body made before it is parsed, in one linear pass over its bytes: no
 * reviver (which makes JSON.parse several times slower) and no recursion over what a tenant sent.
 */

/**
 * The deepest JSON a request body may nest. Parsing is iterative, but everything after it (validation,
 * canonical hashing, serialising to other nodes) recurses, and a 1 MiB body of `[` is 500,000 levels.
 */
export const MAX_JSON_DEPTH = 64;

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COLON = 0x3a;
const OPEN_ARRAY = 0x5b;
const OPEN_OBJECT = 0x7b;
const CLOSE_ARRAY = 0x5d;
const CLOSE_OBJECT = 0x7d;
const PROTO = "__proto__";

const isSpace = (byte: number) => byte === 0x20 || byte === 0x0a || byte === 0x0d || byte === 0x09;

/**
 * Why the JSON text in `bytes` is refused, or null: nested deeper than `maxDepth`, or an object key
 * `__proto__` (in any spelling, escapes included), which would change an object's prototype when the
 * body is merged into another object. Malformed text is left to the parser.
 */
export function jsonRefusal(bytes: Uint8Array, maxDepth = MAX_JSON_DEPTH): string | null {
	let depth = 0;
	for (let i = 0; i < bytes.length; i++) {
		const byte = bytes[i];
		if (byte === QUOTE) {
			const start = i;
			let escaped = false;
			for (i++; i < bytes.length && bytes[i] !== QUOTE; i++)
				if (bytes[i] === BACKSLASH) {
					escaped = true;
					i++;
				}
			// Only a string of the right size, followed by a colon, can be the key `__proto__`.
			if (i - start - 1 >= PROTO.length && (escaped || i - start - 1 === PROTO.length)) {
				let next = i + 1;
				while (next < bytes.length && isSpace(bytes[next])) next++;
				if (bytes[next] === COLON && decoded(bytes, start, i) === PROTO)
					return `JSON key "${PROTO}" is not allowed`;
			}
		} else if (byte === OPEN_ARRAY || byte === OPEN_OBJECT) {
			if (++depth > maxDepth) return `JSON is nested deeper than ${maxDepth} levels`;
		} else if (byte === CLOSE_ARRAY || byte === CLOSE_OBJECT) depth--;
	}
	return null;
}

/** The string token from the quote at `start` to the quote at `end`, unescaped; null when malformed. */
function decoded(bytes: Uint8Array, start: number, end: number): string | null {
	try {
		return JSON.parse(Buffer.from(bytes.subarray(start, end + 1)).toString("utf8")) as string;
	} catch {
		return null;
	}
}

/** body-parser `verify` hook: a refused body fails like malformed JSON (400), unparsed. */
export function guardJsonBody(_req: unknown, _res: unknown, body: Buffer): void {
	const refusal = jsonRefusal(body);
	if (refusal) throw Object.assign(new Error(refusal), { type: "entity.refused" });
}
