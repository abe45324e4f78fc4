import type { IncomingMessage } from "http";
import { methodNotAllowed, unsupportedMediaType } from "./errors";

const JSON_MEDIA_TYPE = /^application\/(?:[\w.+-]+\+)?json\s*(?:;|$)/i;

/**
 * moleculer-web middleware after the JSON body parser, which silently skips a body of another
 * type: such a body would reach the action as `{}` and be reported as missing fields. It is
 * refused for what it is, a 415.
 */
export function requireJsonBody(req: IncomingMessage, _res: unknown, next: (err?: unknown) => void): void {
	const hasBody =
		req.headers["transfer-encoding"] !== undefined || Number(req.headers["content-length"] ?? 0) > 0;
	if (hasBody && !JSON_MEDIA_TYPE.test(req.headers["content-type"] ?? ""))
		return next(unsupportedMediaType("The request body must be JSON (Content-Type: application/json)"));
	next();
}

export interface ServedAlias {
	method: string;
	fullPath: string;
}

/** `/api/v1/tools/:id` → a pattern matching `/api/v1/tools/abc`. */
const pathPattern = (fullPath: string) =>
	new RegExp(`^${fullPath.replace(/[.*+?^${}()|[\]\\]/g, "\\$&").replace(/:[^/]+/g, "[^/]+")}/?$`);

/**
 * The error for a request no alias took: 405 naming the methods the path does serve, or null
 * when no alias has that path (a plain 404).
 */
export function wrongMethod(aliases: readonly ServedAlias[], url: string | undefined): Error | null {
	const path = (url ?? "/").split("?")[0];
	const allowed = [
		...new Set(aliases.filter(a => a.method !== "*" && pathPattern(a.fullPath).test(path)).map(a => a.method))
	];
	return allowed.length ? methodNotAllowed(allowed.sort()) : null;
}
