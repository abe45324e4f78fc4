import { createReadStream } from "fs";
import type { IncomingMessage, ServerResponse } from "http";
import path from "path";
import { sendError } from "./error-response";
import { notFound } from "./errors";

/** Swagger UI from the swagger-ui-dist package: served by the gateway itself, so /docs needs no CDN. */
const SWAGGER_DIR = path.dirname(require.resolve("swagger-ui-dist/package.json"));

const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Tool Registry API</title>
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

/** The only files /docs/:file serves (no path from the request ever reaches the file system). */
const ASSETS: Record<string, { type: string; body?: string }> = {
	"swagger-ui.css": { type: "text/css" },
	"swagger-ui-bundle.js": { type: "application/javascript" },
	"init.js": { type: "application/javascript", body: INIT }
};

function sendDocsPage(res: ServerResponse): void {
	res.writeHead(200, { "Content-Type": "text/html; charset=utf-8" });
	res.end(PAGE);
}

/** Answers false when `file` is not one of the page's assets. */
function sendDocsAsset(file: string, res: ServerResponse): boolean {
	const asset = Object.hasOwn(ASSETS, file) ? ASSETS[file] : undefined;
	if (!asset) return false;
	res.writeHead(200, {
		"Content-Type": `${asset.type}; charset=utf-8`,
		"Cache-Control": "public, max-age=3600"
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
