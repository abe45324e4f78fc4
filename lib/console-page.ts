import { createReadStream, readdirSync, statSync } from "fs";
import type { IncomingMessage, ServerResponse } from "http";
import path from "path";
import { sendError } from "./error-response";
import { notFound } from "./errors";
import { pageHeaders } from "./page-headers";

/**
 * The web console at `/ui`: a static bundle that `npm run build` makes from `ui/` with Vite into
 * `dist/console`. Sources run from `lib/`, compiled code from `dist/lib/`: both find it here.
 */
const BUNDLE_DIRS = [path.join(__dirname, "../dist/console"), path.join(__dirname, "../console")];

/**
 * The page may load only its own scripts, styles and images and talk only to its own origin
 * (`'self'` covers the same-origin WebSocket): an injected tag can neither run nor send anything away.
 */
export const CONSOLE_CSP = [
	"default-src 'none'",
	"script-src 'self'",
	"style-src 'self'",
	"img-src 'self' data:",
	"connect-src 'self'",
	"base-uri 'none'",
	"form-action 'none'",
	"frame-ancestors 'none'"
].join("; ");

const SECURITY_HEADERS = pageHeaders(CONSOLE_CSP);

const CONTENT_TYPES: Record<string, string> = {
	".html": "text/html; charset=utf-8",
	".js": "application/javascript; charset=utf-8",
	".css": "text/css; charset=utf-8",
	".svg": "image/svg+xml",
	".png": "image/png",
	".json": "application/json; charset=utf-8"
};

interface Bundle {
	/** URL path below `/ui/` → file on disk: the only files served, listed from the build. */
	files: Map<string, string>;
	index: string;
	/** When index.html was written: a new build (new asset names) is listed again. */
	builtAt: number;
}

let bundle: Bundle | null = null;

const builtAt = (index: string) => statSync(index, { throwIfNoEntry: false })?.mtimeMs;

/** Lists the built bundle; null while it is not built (checked again on the next request). */
function loadBundle(): Bundle | null {
	if (bundle && builtAt(bundle.index) === bundle.builtAt) return bundle;
	const dir = BUNDLE_DIRS.find(candidate => builtAt(path.join(candidate, "index.html")) !== undefined);
	if (!dir) return (bundle = null);
	const index = path.join(dir, "index.html");
	const files = new Map<string, string>();
	for (const entry of readdirSync(dir, { recursive: true, withFileTypes: true }))
		if (entry.isFile()) {
			const file = path.join(entry.parentPath, entry.name);
			files.set(path.relative(dir, file).split(path.sep).join("/"), file);
		}
	return (bundle = { files, index, builtAt: builtAt(index)! });
}

const NOT_BUILT = `<!doctype html><html lang="en"><meta charset="utf-8"><title>Tool Registry console</title>
<p>The console is not built. Run <code>npm run build</code> and reload.</p></html>\n`;

/**
 * Answers `GET /ui` (the page) and `GET /ui/<file>` (its assets); false when `file` is not part of
 * the bundle. No path from the request reaches the file system: only listed files are served.
 */
function sendConsole(file: string | undefined, res: ServerResponse): boolean {
	const built = loadBundle();
	if (!built) {
		res.writeHead(503, {
			"Content-Type": "text/html; charset=utf-8",
			"Retry-After": "60",
			...SECURITY_HEADERS
		});
		res.end(NOT_BUILT);
		return true;
	}
	const target = file === undefined ? built.index : built.files.get(file);
	if (!target) return false;
	const hashed = file?.startsWith("assets/");
	res.writeHead(200, {
		"Content-Type": CONTENT_TYPES[path.extname(target)] ?? "application/octet-stream",
		// Vite puts a content hash in every asset name, so those never change; the page always may.
		"Cache-Control": hashed ? "public, max-age=31536000, immutable" : "no-cache",
		...SECURITY_HEADERS
	});
	createReadStream(target).pipe(res);
	return true;
}

/** moleculer-web alias of `GET /ui`, `GET /ui/:file` and `GET /ui/assets/:asset`. */
export function serveConsole(
	req: IncomingMessage & { $params?: { file?: string; asset?: string } },
	res: ServerResponse
): void {
	const { file, asset } = req.$params ?? {};
	if (!sendConsole(asset !== undefined ? `assets/${asset}` : file, res))
		sendError(res, notFound("File", file ?? asset));
}
