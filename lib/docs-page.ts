import { createReadStream } from "fs";
import type { IncomingMessage, ServerResponse } from "http";
import path from "path";
import { sendError } from "./error-response";
import { notFound } from "./errors";
import { pageHeaders } from "./page-headers";

/** Swagger UI from the swagger-ui-dist package: served by the gateway itself, so /docs needs no CDN. */
const SWAGGER_DIR = path.dirname(require.resolve("swagger-ui-dist/package.json"));

const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Tool Registry API</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/docs/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="/docs/swagger-ui-bundle.js"></script>
<script src="/docs/init.js"></script>
</body>
</html>
`;

const INIT = `window.ui = SwaggerUIBundle({ url: "/openapi.json", dom_id: "#swagger-ui", deepLinking: true });\n`;

/**
 * Swagger UI loads only its own files and the API description from this origin, and its "Try it out"
 * calls go there too; it sets inline styles, hence `'unsafe-inline'` for styles (never for scripts).
 */
const DOCS_HEADERS = pageHeaders(
	[
		"default-src 'none'",
		"script-src 'self'",
		"style-src 'self' 'unsafe-inline'",
		"img-src 'self' data:",
		"connect-src 'self'",
		"base-uri 'none'",
		"form-action 'none'",
		"frame-ancestors 'none'"
	].join("; ")
);

/** The only files /docs/:file serves (no path from the request ever reaches the file system). */
const ASSETS: Record<string, { type: string; body?: string }> = {
	"swagger-ui.css": { type: "text/css" },
	"swagger-ui-bundle.js": { type: "application/javascript" },
	"init.js": { type: "application/javascript", body: INIT }
};

function sendDocsPage(res: ServerResponse): void {
	res.writeHead(200, { "Content-Type": "text/html; charset=utf-8", ...DOCS_HEADERS });
	res.end(PAGE);
}

/** Answers false when `file` is not one of the page's assets. */
function sendDocsAsset(file: string, res: ServerResponse): boolean {
	const asset = Object.hasOwn(ASSETS, file) ? ASSETS[file] : undefined;
	if (!asset) return false;
	res.writeHead(200, {
		"Content-Type": `${asset.type}; charset=utf-8`,
		"Cache-Control": "public, max-age=3600",
		...DOCS_HEADERS
	});
	if (asset.body !== undefined) res.end(asset.body);
	else createReadStream(path.join(SWAGGER_DIR, file)).pipe(res);
	return true;
}

/** moleculer-web alias of `GET /docs` and `GET /docs/:file`. */
export function serveDocs(req: IncomingMessage & { $params?: { file?: string } }, res: ServerResponse): void {
	const file = req.$params?.file;
	if (file === undefined) return sendDocsPage(res);
	if (!sendDocsAsset(file, res)) sendError(res, notFound("File", file));
}
