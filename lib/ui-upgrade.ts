import type { IncomingHttpHeaders, IncomingMessage } from "http";

/**
 * Subprotocol the console offers on `/ws`. Browsers cannot set headers on a WebSocket, so it sends
 * its credential and tenant as further offered subprotocols (`tool-registry.bearer.<base64url>`,
 * `tool-registry.tenant.<base64url>`), which keeps them out of the URL and so out of access logs.
 */
export const UI_PROTOCOL = "tool-registry";

const offeredProtocol = (req: IncomingMessage, kind: "bearer" | "tenant"): string | null => {
	const prefix = `${UI_PROTOCOL}.${kind}.`;
	const offered = (req.headers["sec-websocket-protocol"] ?? "").split(",").map(p => p.trim());
	const value = offered.find(p => p.startsWith(prefix))?.slice(prefix.length);
	return value ? Buffer.from(value, "base64url").toString("utf8") : null;
};

/** The credential and tenant of a WebSocket upgrade: headers, else subprotocols, else the query. */
export const uiSocketHeaders = (req: IncomingMessage, url: URL): IncomingHttpHeaders => {
	const headers = { ...req.headers };
	const token = offeredProtocol(req, "bearer") ?? url.searchParams.get("token");
	const tenant = offeredProtocol(req, "tenant") ?? url.searchParams.get("tenant_id");
	if (!headers.authorization && token) headers.authorization = `Bearer ${token}`;
	if (!headers["x-tenant-id"] && tenant) headers["x-tenant-id"] = tenant;
	return headers;
};
