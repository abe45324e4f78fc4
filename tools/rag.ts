import { OutboundTooLarge, readCapped } from "../lib/outbound/guarded-fetch";
import type { JsonObject } from "../types/wire";
import { type BaseTool, type ToolContext, ToolFailure } from "./base";

const MAX_RESPONSE_BYTES = 5 * 1024 * 1024;

/**
 * A path whose segments each hold a character other than a dot, so none is `.` or `..`: the endpoint
 * resolves under the orchestrator's base URL and cannot climb out of its path. RE2 has no lookahead.
 */
const ENDPOINT_PATTERN = "^(/([A-Za-z0-9_.-]*[A-Za-z0-9_-][A-Za-z0-9_.-]*)?)+$";
const ENDPOINT_CHARS = /^\/[A-Za-z0-9/_.-]*$/;

const configSchema: JsonObject = {
	type: "object",
	properties: {
		// A path only, so a tenant cannot send the service token to another host or another path.
		endpoint: { type: "string", maxLength: 200, pattern: ENDPOINT_PATTERN },
		collection_id: { type: "string", maxLength: 200 },
		top_k: { type: "integer", minimum: 1, maximum: 100 }
	},
	additionalProperties: false
};

const parametersFor = (queryDescription: string): JsonObject => ({
	type: "object",
	properties: {
		query: { type: "string", minLength: 1, maxLength: 4000, description: queryDescription },
		collection_id: {
			type: "string",
			maxLength: 200,
			description: "Collection to search (default from config)"
		},
		top_k: { type: "integer", minimum: 1, maximum: 100, description: "How many results to return" },
		filters: { type: "object", description: "Metadata filters passed to the orchestrator as given" }
	},
	required: ["query"],
	additionalProperties: false
});

const upstream = (message: string): ToolFailure => new ToolFailure("upstream_error", message);

function endpointUrl(base: string | undefined, endpoint: unknown): string {
	if (!base) throw new ToolFailure("tool_error", "ORCHESTRATOR_URL is not configured");
	// Checked again here: the token must never leave for another host or path, even if a stored config
	// skipped schema validation (`@evil.example/` appended to the base would become the host).
	if (typeof endpoint !== "string" || !ENDPOINT_CHARS.test(endpoint)) {
		throw new ToolFailure("tool_error", "config.endpoint must be a path such as /api/v1/rag/query");
	}
	let root: URL;
	try {
		root = new URL(base.replace(/\/+$/, "") + "/");
	} catch {
		throw new ToolFailure("tool_error", "ORCHESTRATOR_URL is not a valid URL");
	}
	const path = root.pathname + endpoint.slice(1);
	const url = new URL(root.origin + path);
	// The parser resolves `.` and `..` segments: a path it rewrote could climb out of the base path.
	if (url.pathname !== path) {
		throw new ToolFailure("tool_error", "config.endpoint must stay under ORCHESTRATOR_URL's path");
	}
	return url.href;
}

function requestBody(params: JsonObject, config: JsonObject, tenantId: string): JsonObject {
	const body: JsonObject = { tenant_id: tenantId, ...params };
	// The caller's tenant is authoritative: a parameter must not query another tenant's data.
	body.tenant_id = tenantId;
	for (const field of ["collection_id", "top_k"]) {
		if (body[field] === undefined && config[field] !== undefined) body[field] = config[field];
	}
	return body;
}

async function readBody(response: Response): Promise<string> {
	try {
		return (await readCapped(response.body, MAX_RESPONSE_BYTES)).toString("utf8");
	} catch (err) {
		if (err instanceof OutboundTooLarge)
			throw upstream(`orchestrator response exceeds ${MAX_RESPONSE_BYTES} bytes`);
		throw err;
	}
}

/** The socket-level reason (`connect ECONNREFUSED ...`) rather than undici's bare "fetch failed". */
function reason(err: unknown): string {
	const e = err as { message?: string; cause?: { message?: string } };
	return e.cause?.message ?? e.message ?? String(err);
}

async function callOrchestrator(url: string, body: JsonObject, context: ToolContext): Promise<JsonObject> {
	const headers: Record<string, string> = {
		"Content-Type": "application/json",
		"X-Tenant-ID": context.tenant_id
	};
	if (context.env.service_token) headers.Authorization = `Bearer ${context.env.service_token}`;
	// Our own deadline too, so the call is bounded even if the caller never aborts its signal.
	const signal = AbortSignal.any([context.signal, AbortSignal.timeout(context.timeout_ms)]);
	try {
		// A redirect would carry the service token elsewhere; the orchestrator API has no reason to send one.
		const response = await fetch(url, {
			method: "POST",
			headers,
			body: JSON.stringify(body),
			signal,
			redirect: "error"
		});
		if (response.status >= 400) {
			await response.body?.cancel();
			throw upstream(`orchestrator answered ${response.status}`);
		}
		const text = await readBody(response);
		let data: unknown;
		try {
			data = JSON.parse(text);
		} catch {
			throw upstream(`orchestrator answered ${response.status} with invalid JSON`);
		}
		const isObject = data !== null && typeof data === "object" && !Array.isArray(data);
		return isObject ? (data as JsonObject) : { data };
	} catch (err) {
		if (err instanceof ToolFailure) throw err;
		if (signal.aborted) {
			throw new ToolFailure("timeout", `orchestrator did not answer within ${context.timeout_ms} ms`);
		}
		throw upstream(`orchestrator unreachable: ${reason(err)}`);
	}
}

/** RAG goes through the orchestrator, which reaches the Query/Embedding services; never called directly. */
function ragTool(type: string, defaultEndpoint: string, queryDescription: string): BaseTool {
	return {
		type,
		parameters: parametersFor(queryDescription),
		configSchema,
		callsOut: true,
		async execute(params, config, context) {
			const url = endpointUrl(context.env.orchestrator_url, config.endpoint ?? defaultEndpoint);
			return callOrchestrator(url, requestBody(params, config, context.tenant_id), context);
		}
	};
}

export const ragQueryTool = ragTool(
	"rag_query",
	"/api/v1/rag/query",
	"Question to answer from the knowledge base"
);
export const ragSearchTool = ragTool(
	"rag_search",
	"/api/v1/rag/search",
	"Text to find matching documents for"
);
