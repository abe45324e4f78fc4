import { invalid } from "../errors";
import { newId } from "../ids";
import type { JsonObject, SourceType, ToolSource } from "../../types/wire";

/** What registering a source is given (the shape checks of the action's params passed). */
export interface SourceRequest {
	type: SourceType;
	name: string;
	url?: string;
	spec?: JsonObject | string;
	base_url?: string;
	headers?: Record<string, string>;
}

/**
 * A new source of `tenantId` as stored before its first refresh, or a 422 naming what its type
 * needs: an MCP source a `url` and no `spec`, an OpenAPI source exactly one of `spec` and `url`.
 */
export function newSource(tenantId: string, request: SourceRequest, refreshIntervalMs: number): ToolSource {
	const { type, name, url, spec, base_url, headers = {} } = request;
	if (type === "mcp" && !url)
		throw invalid("An MCP source needs a url", [{ field: "url", message: "is required" }]);
	if (type === "mcp" && spec !== undefined)
		throw invalid("An MCP source has no spec", [{ field: "spec", message: "is not allowed" }]);
	if (type === "openapi" && (url === undefined) === (spec === undefined))
		throw invalid("An OpenAPI source needs either a spec or a url", [
			{ field: "spec", message: "give exactly one of spec and url" }
		]);
	const now = new Date().toISOString();
	return {
		id: newId(),
		tenant_id: tenantId,
		type,
		name,
		...(url ? { url } : {}),
		...(spec !== undefined ? { spec: spec as JsonObject } : {}),
		...(base_url ? { base_url } : {}),
		headers,
		health: { state: "unknown", failures: 0 },
		tools: {},
		removed: [],
		tool_count: 0,
		last_refresh_at: null,
		next_refresh_at: new Date(Date.now() + refreshIntervalMs).toISOString(),
		created_at: now,
		updated_at: now
	};
}
