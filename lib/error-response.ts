import { STATUS_CODES, type ServerResponse } from "http";
import type { Duplex } from "stream";
import { badRequest, DEPENDENCY_RETRY_AFTER_S, isNoNode } from "./errors";

/**
 * The one way an error leaves the service over HTTP: every REST route, `/mcp`, `/metrics`, `/docs`,
 * refused WebSocket upgrades and requests Node refuses before routing render it with `toErrorBody`
 * and write it with `sendError` or `refuseOnSocket`.
 */

export interface ErrorBody {
	name: string;
	message: string;
	code: number;
	type: string;
	data?: unknown;
}

/** body-parser's error types for a request body the server refuses to read. */
const BODY_ERRORS: Record<string, { code: number; type: string; message?: string }> = {
	"entity.parse.failed": { code: 400, type: "INVALID_JSON" },
	"entity.refused": { code: 400, type: "INVALID_JSON" },
	"entity.too.large": { code: 413, type: "PAYLOAD_TOO_LARGE", message: "Request body exceeds 1 MiB" },
	"encoding.unsupported": { code: 415, type: "UNSUPPORTED_ENCODING" },
	"charset.unsupported": { code: 415, type: "UNSUPPORTED_CHARSET" },
	"request.aborted": { code: 400, type: "REQUEST_ABORTED" },
	"request.size.invalid": { code: 400, type: "BAD_REQUEST" }
};

/**
 * moleculer-web middleware after the body parsers, which still sees their errors as thrown: a body
 * that fails to decompress (corrupt gzip, deflate or br) reaches it as zlib's error with a string
 * `code`, which moleculer-web would turn into a 500. It is the client's bad body, so it becomes a 400
 * before authentication even runs. JSON that is neither an object nor an array (`null`, `42`) is
 * refused by the parser's strict mode in `JSON.parse`'s words, "… is not valid JSON", which is
 * untrue: it gets a message that says what is wrong.
 */
export function bodyDecodingErrors(
	err: { code?: unknown; status?: unknown; type?: unknown; body?: unknown },
	_req: unknown,
	_res: unknown,
	next: (err?: unknown) => void
): void {
	const undecodable = err.status === 400 && err.type === undefined && typeof err.code === "string";
	if (undecodable) return next(badRequest("Request body cannot be decoded", "INVALID_BODY_ENCODING"));
	if (err.type === "entity.parse.failed" && isJsonScalar(err.body))
		return next(badRequest("The request body must be a JSON object", "INVALID_JSON"));
	next(err);
}

/** Whether a body the strict parser refused is valid JSON all the same: a scalar, not `{…}` or `[…]`. */
function isJsonScalar(body: unknown): boolean {
	if (typeof body !== "string" || /^\s*[{[]/.test(body)) return false;
	try {
		JSON.parse(body);
		return true;
	} catch {
		return false;
	}
}

/** moleculer-web's own type names mapped to ours. */
const RENAMED_TYPES: Record<string, string> = {
	NO_TOKEN: "UNAUTHORIZED",
	INVALID_TOKEN: "UNAUTHORIZED",
	RATE_LIMIT_EXCEEDED: "RATE_LIMITED"
};

const DEFAULT_TYPES: Record<number, string> = {
	400: "BAD_REQUEST",
	401: "UNAUTHORIZED",
	403: "FORBIDDEN",
	404: "NOT_FOUND",
	405: "METHOD_NOT_ALLOWED",
	408: "REQUEST_TIMEOUT",
	409: "CONFLICT",
	413: "PAYLOAD_TOO_LARGE",
	415: "UNSUPPORTED_MEDIA_TYPE",
	422: "VALIDATION_ERROR",
	429: "RATE_LIMITED",
	431: "HEADERS_TOO_LARGE",
	503: "SERVICE_UNAVAILABLE",
	504: "TIMEOUT"
};

interface AnyError {
	name?: string;
	message?: string;
	code?: unknown;
	status?: unknown;
	type?: unknown;
	data?: unknown;
}

/** Any error as the error body every client gets: `{ name, message, code, type, data? }`. */
export function toErrorBody(error: unknown): ErrorBody {
	const err = (error ?? {}) as AnyError;
	const bodyError = typeof err.type === "string" ? BODY_ERRORS[err.type] : undefined;
	if (bodyError)
		return {
			name: "BadRequestError",
			message: bodyError.message ?? err.message ?? "Invalid request body",
			code: bodyError.code,
			type: bodyError.type
		};
	// A route matched but no node offers its action (or one an action needs): the service is
	// down, which is a 503 for the caller, not Moleculer's 404.
	if (isNoNode(err))
		return {
			name: "ServiceUnavailableError",
			message: "Service unavailable",
			code: 503,
			type: "SERVICE_UNAVAILABLE"
		};
	const code = [err.code, err.status].find(c => typeof c === "number" && c >= 400 && c < 600) as
		number | undefined;
	if (code === undefined || (code >= 500 && code !== 503 && code !== 504))
		// Unexpected failures never leak internals.
		return {
			name: "InternalError",
			message: "Internal server error",
			code: code ?? 500,
			type: "INTERNAL_ERROR"
		};
	const rawType = typeof err.type === "string" && /^[A-Z][A-Z0-9_]*$/.test(err.type) ? err.type : undefined;
	const body: ErrorBody = {
		name: err.name ?? "Error",
		message: err.message ?? "Request failed",
		code,
		type: (rawType && (RENAMED_TYPES[rawType] ?? rawType)) || DEFAULT_TYPES[code] || "ERROR"
	};
	if (err.data !== undefined)
		body.data = body.type === "VALIDATION_ERROR" && Array.isArray(err.data) ? toProblems(err.data) : err.data;
	return body;
}

interface ValidatorEntry {
	field?: unknown;
	message?: unknown;
	type?: unknown;
	expected?: unknown;
	actual?: unknown;
}

/**
 * fastest-validator reports `{type, field, message, expected, actual, nodeID, action}`, sometimes
 * several per field: the caller gets `{field, message}`, one entry per field, naming the allowed
 * values of an enum.
 */
function toProblems(data: unknown[]): unknown[] {
	// Our own reports are already one `{field, message}` per problem.
	if (!data.some(entry => typeof (entry as ValidatorEntry)?.type === "string")) return data;
	const problems = new Map<string, string>();
	for (const entry of data as ValidatorEntry[]) {
		if (!entry || typeof entry !== "object" || typeof entry.message !== "string") continue;
		const field = typeof entry.field === "string" ? entry.field : "";
		// `$$strict` names every unknown key of an object in one entry: one problem each, named by its path.
		if (entry.type === "objectStrict" && typeof entry.actual === "string") {
			for (const key of entry.actual.split(", "))
				problems.set(field ? `${field}.${key}` : key, "is not allowed");
			continue;
		}
		if (problems.has(field)) continue;
		const message =
			typeof entry.type === "string" && entry.type.startsWith("enum") && entry.expected !== undefined
				? `must be one of: ${String(entry.expected)}`
				: entry.message.replace(/^The '[^']*' field /, "").replace(/\.$/, "");
		problems.set(field, message);
	}
	return [...problems].map(([field, message]) => ({ field, message }));
}

/** Headers an error answer carries besides its body: `Retry-After` when waiting helps, `Allow` on a 405. */
export function errorHeaders(body: ErrorBody): Record<string, string> {
	const allow = (body.data as { allow?: string[] } | undefined)?.allow;
	if (body.code === 405 && allow) return { Allow: allow.join(", ") };
	const retryAfter = (body.data as { retry_after?: number } | undefined)?.retry_after;
	if (body.type === "RATE_LIMITED" && retryAfter !== undefined) return { "Retry-After": String(retryAfter) };
	if (body.code === 503) return { "Retry-After": String(retryAfter ?? DEPENDENCY_RETRY_AFTER_S) };
	return {};
}

const JSON_TYPE = "application/json; charset=utf-8";

/** Answers an HTTP request with `error`; returns the body sent, for logging. */
export function sendError(res: ServerResponse, error: unknown): ErrorBody {
	const body = toErrorBody(error);
	if (res.headersSent) {
		res.destroy();
		return body;
	}
	res.writeHead(body.code, { "Content-Type": JSON_TYPE, ...errorHeaders(body) });
	res.end(JSON.stringify(body));
	return body;
}

/**
 * Answers on the bare socket, where there is no response object (an upgrade request, or a request Node
 * refused before routing it), with the same HTTP error a REST route would send, and drops the socket.
 */
export function refuseOnSocket(socket: Duplex, error: unknown): ErrorBody {
	const body = toErrorBody(error);
	if (!socket.writable) {
		socket.destroy();
		return body;
	}
	const json = JSON.stringify(body);
	const head = [
		`HTTP/1.1 ${body.code} ${STATUS_CODES[body.code] ?? ""}`,
		"Connection: close",
		`Content-Type: ${JSON_TYPE}`,
		`Content-Length: ${Buffer.byteLength(json)}`,
		...Object.entries(errorHeaders(body)).map(([name, value]) => `${name}: ${value}`)
	];
	socket.once("finish", () => socket.destroy());
	socket.end(`${head.join("\r\n")}\r\n\r\n${json}`);
	return body;
}
