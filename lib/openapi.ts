import { paramsToJsonSchema } from "./params-schema";
import type { RouteAlias } from "./api-routes";
import { RESPONSE_SCHEMAS, type ResponseSchemaName } from "./openapi-schemas";

/** An alias the gateway serves, as moleculer-web registered it. */
export interface ServedRoute {
	method: string;
	/** moleculer-web path, e.g. `/api/v1/tools/:id`. */
	fullPath: string;
	/** Set for `/api/v1` routes: the table entry with action, scope and docs. */
	alias?: RouteAlias;
}

/** Docs of the gateway's own endpoints (health, metrics, MCP, WebSocket, these docs). */
export interface GatewayRouteDoc {
	summary: string;
	description?: string;
	/** Not behind the API credential (health, docs). */
	public?: boolean;
	contentType?: string;
	/** Schema of the JSON answer (a `#/components/schemas` name). */
	response?: ResponseSchemaName;
	/** Status of the answer, when not 200. */
	status?: number;
}

export const GATEWAY_ROUTE_DOCS: Record<string, GatewayRouteDoc> = {
	"GET /": {
		summary: "Redirects to the web console (`/ui`); the body names the other entry points",
		public: true,
		status: 302
	},
	"GET /health": { summary: "Liveness: 200 while the process is alive", public: true, response: "Health" },
	"GET /health/ready": {
		summary: "Readiness: 200 when the transporter and Redis answer, else 503",
		public: true,
		response: "Readiness"
	},
	"GET /metrics": {
		summary: "Prometheus metrics of this node",
		description: "Behind the service token when SERVICE_TOKEN is set.",
		contentType: "text/plain"
	},
	"POST /mcp": { summary: "MCP Streamable HTTP: JSON-RPC requests (initialize, tools/list, tools/call)" },
	"GET /mcp": {
		summary: "MCP Streamable HTTP: the session's server-sent event stream",
		contentType: "text/event-stream"
	},
	"DELETE /mcp": { summary: "MCP Streamable HTTP: end the session" },
	"GET /ws": {
		summary: "UI WebSocket (upgrade): tool and task events of the caller's tenant",
		description:
			"Credential in the Authorization header, or as the offered subprotocols `tool-registry`, " +
			"`tool-registry.bearer.<base64url credential>` (and `tool-registry.tenant.<base64url tenant>` for the " +
			"service token), or as ?token= (with ?tenant_id=)."
	},
	"GET /openapi.json": { summary: "This document", public: true },
	"GET /docs": { summary: "API documentation page (works offline)", public: true, contentType: "text/html" },
	"GET /docs/:file": { summary: "Static files of the documentation page", public: true },
	"GET /ui": { summary: "Web console (works offline)", public: true, contentType: "text/html" },
	"GET /ui/:file": { summary: "Static files of the web console", public: true },
	"GET /ui/assets/:asset": { summary: "Static files of the web console", public: true }
};

/** Served routes that are not moleculer-web aliases (the WebSocket upgrade). */
export const UPGRADE_ROUTES: ServedRoute[] = [{ method: "GET", fullPath: "/ws" }];

const ERROR_STATUSES: Record<string, string> = {
	"400": "Bad request (malformed JSON, missing X-Tenant-ID)",
	"401": "Missing or unknown credential",
	"403": "The credential lacks the scope or acts for another tenant",
	"404": "Not found (another tenant's resources included)",
	"409": "Conflict",
	"413": "Body over 1 MiB",
	"415": "The body is not JSON (Content-Type)",
	"422": "Validation failed; `data` lists the fields",
	"429": "Rate limited; see Retry-After",
	"503": "A needed service is unavailable"
};

const jsonContent = (schema: ResponseSchemaName) => ({
	content: { "application/json": { schema: { $ref: `#/components/schemas/${schema}` } } }
});

const toOpenApiPath = (path: string) => path.replace(/:([A-Za-z_]+)/g, "{$1}");
const pathParams = (path: string) => [...path.matchAll(/:([A-Za-z_]+)/g)].map(m => m[1]);

const COMPONENTS = {
	securitySchemes: { bearer: { type: "http", scheme: "bearer", description: "Service token or API key" } },
	schemas: RESPONSE_SCHEMAS
};

const IDENTITY_HEADERS = [
	{
		name: "X-Tenant-ID",
		in: "header",
		schema: { type: "string" },
		description: "Required with the service token"
	},
	{ name: "X-Agent-ID", in: "header", schema: { type: "string" }, description: "Acting agent (permissions)" }
];

/**
 * The OpenAPI 3.1 document of what the gateway serves, built from its registered routes, the route
 * table's docs and the actions' own `params`. A served route without docs is listed under
 * `x-undocumented`, which the tests require to be empty.
 */
export function buildOpenApi(
	served: ServedRoute[],
	paramsOf: (action: string) => Record<string, unknown> | undefined,
	version: string
) {
	const paths: Record<string, Record<string, unknown>> = {};
	const undocumented: string[] = [];
	const ordered = [...served].sort(
		(a, b) => a.fullPath.localeCompare(b.fullPath) || a.method.localeCompare(b.method)
	);
	for (const { method, fullPath, alias } of ordered) {
		const key = `${method} ${fullPath}`;
		const gatewayDoc = GATEWAY_ROUTE_DOCS[key];
		if (!alias && !gatewayDoc) {
			undocumented.push(key);
			continue;
		}
		const inPath = pathParams(fullPath);
		const parameters: unknown[] = inPath.map(name => ({
			name,
			in: "path",
			required: true,
			schema: { type: "string" }
		}));
		const operation: Record<string, unknown> = { summary: alias?.summary ?? gatewayDoc!.summary, parameters };
		if (gatewayDoc?.description) operation.description = gatewayDoc.description;
		if (alias) {
			operation.operationId = alias.action;
			operation.description = `Scope \`${alias.scope}\`. Moleculer action \`${alias.action}\`.`;
			parameters.push(...IDENTITY_HEADERS);
			const params = paramsToJsonSchema(paramsOf(alias.action)) as {
				properties: Record<string, unknown>;
				required?: string[];
			};
			const own = Object.entries(params.properties).filter(([name]) => !inPath.includes(name));
			const required = (params.required ?? []).filter(name => !inPath.includes(name));
			if (method === "GET" || method === "DELETE")
				for (const [name, schema] of own)
					parameters.push({ name, in: "query", required: required.includes(name), schema });
			else
				operation.requestBody = {
					required: true,
					content: {
						"application/json": {
							schema: alias.body ?? { type: "object", properties: Object.fromEntries(own), required }
						}
					}
				};
			const status = String(alias.status ?? 200);
			operation.responses = {
				[status]: { description: alias.summary, ...(alias.response ? jsonContent(alias.response) : {}) },
				...Object.fromEntries(
					Object.entries(alias.otherResponses ?? {}).map(([code, { description, response }]) => [
						code,
						{ description, ...jsonContent(response) }
					])
				),
				...Object.fromEntries(
					Object.entries(ERROR_STATUSES).map(([code, description]) => [
						code,
						{ description, ...jsonContent("Error") }
					])
				)
			};
		} else {
			if (gatewayDoc!.public) operation.security = [];
			operation.responses = {
				[String(gatewayDoc!.status ?? 200)]: {
					description: gatewayDoc!.summary,
					...(gatewayDoc!.response
						? jsonContent(gatewayDoc!.response)
						: { content: { [gatewayDoc!.contentType ?? "application/json"]: {} } })
				}
			};
		}
		(paths[toOpenApiPath(fullPath)] ??= {})[method.toLowerCase()] = operation;
	}
	return {
		openapi: "3.1.0",
		info: {
			title: "Tool Registry",
			version,
			description: "Register, validate, discover and execute tools for AI agents, per tenant."
		},
		security: [{ bearer: [] }],
		paths,
		components: COMPONENTS,
		...(undocumented.length ? { "x-undocumented": undocumented } : {})
	};
}
