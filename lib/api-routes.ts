import type { Scope } from "../types/wire";
import { DEFINITION_SCHEMA } from "./definition";
import type { ResponseSchemaName } from "./openapi-schemas";
import { scopeOfTask } from "./tasks/messages";

/**
 * One `/api/v1` route: the action it calls and its HTTP concerns (scope, success status, docs).
 * The gateway routes from this table and `/openapi.json` is generated from it.
 */
export interface RouteAlias {
	action: string;
	scope: Scope;
	summary: string;
	status?: number;
	/** `Location` of a created resource (201). */
	location?: (created: Record<string, string>) => string;
	/** Request body schema when the action's own params cannot describe it (tenant data checked by ajv). */
	body?: Record<string, unknown>;
	/** Response body schema (a `#/components/schemas` name) of the success status; none for a 204. */
	response?: ResponseSchemaName;
	/** Further success answers the action may choose (`ctx.meta.$statusCode`), by status. */
	otherResponses?: Record<string, { description: string; response: ResponseSchemaName }>;
	/** The scope a request needs when its body decides it (a task's `type`); `scope` otherwise. */
	scopeFor?: (body: unknown) => Scope;
}

const route = (
	action: string,
	scope: Scope,
	summary: string,
	extra: Omit<RouteAlias, "action" | "scope" | "summary"> = {}
): RouteAlias => ({ action, scope, summary, ...extra });

/** Every `/api/v1` route. An alias without a scope cannot be written: authorization denies by default. */
export const API_ROUTES: Record<string, RouteAlias> = {
	"POST /tools": route("registry.register", "tools:write", "Register a tool", {
		status: 201,
		location: tool => `/api/v1/tools/${tool.id}`,
		body: DEFINITION_SCHEMA,
		response: "StoredTool"
	}),
	"GET /tools": route("registry.list", "tools:read", "List the tenant's tools and the global ones", {
		response: "ToolPage"
	}),
	"GET /tools/:id": route("registry.get", "tools:read", "Read a tool (optionally an earlier version)", {
		response: "StoredTool"
	}),
	"PATCH /tools/:id": route("registry.update", "tools:write", "Update a tool (version + 1)", {
		body: { ...DEFINITION_SCHEMA, required: [] },
		response: "StoredTool"
	}),
	"GET /tools/:id/versions": route("registry.versions", "tools:read", "A tool's versions, newest first", {
		response: "ToolVersions"
	}),
	"POST /tools/:id/rollback": route(
		"registry.rollback",
		"tools:write",
		"A new version with an earlier version's definition",
		{ response: "StoredTool" }
	),
	"DELETE /tools/:id": route("registry.remove", "tools:write", "Delete a tool", { status: 204 }),
	"POST /tools/:id/validate": route(
		"registry.revalidate",
		"tools:write",
		"Validate a tool again (202 when queued)",
		{
			response: "ValidationReport",
			otherResponses: {
				"202": { description: "The functional check is queued as a task", response: "ProbeQueued" }
			}
		}
	),
	"PUT /tools/:id/status": route(
		"registry.setStatus",
		"tools:write",
		"Disable a tool (neither discovered nor run) or enable it again",
		{ response: "StoredTool" }
	),
	"GET /tools/:id/stats": route("executor.stats", "tools:read", "Usage of a tool by the calling tenant", {
		response: "ToolUsage"
	}),
	"POST /registry/validate": route(
		"validator.validate",
		"tools:write",
		"Check a definition; nothing is stored",
		{ body: DEFINITION_SCHEMA, response: "ValidationReport" }
	),
	"POST /registry/discover": route(
		"registry.discover",
		"tools:read",
		"Ranked tools the calling agent may use",
		{ response: "Discovery" }
	),
	"POST /internal/execute": route("api.tools.execute", "tools:execute", "Run a tool now", {
		response: "ExecutionResult"
	}),
	"POST /internal/tasks": route("api.tasks.submit", "tools:execute", "Queue a task", {
		status: 202,
		response: "TaskAccepted",
		// A registration task writes the catalog, a discovery task reads it: as the direct requests would.
		scopeFor: body => scopeOfTask((body as { type?: unknown } | null)?.type)
	}),
	"GET /internal/tasks/:task_id": route("api.tasks.status", "tools:execute", "Read a task", {
		response: "Task"
	}),
	"DELETE /internal/tasks/:task_id": route("api.tasks.cancel", "tools:execute", "Cancel a pending task", {
		response: "Task"
	}),
	"POST /keys": route("keys.create", "keys:admin", "Create an API key (its secret is shown once)", {
		status: 201,
		location: key => `/api/v1/keys/${key.key_id}`,
		response: "CreatedApiKey"
	}),
	"POST /sources": route(
		"sources.create",
		"tools:write",
		"Register a tool source (MCP server or OpenAPI document)",
		{
			status: 201,
			location: source => `/api/v1/sources/${source.id}`,
			response: "ToolSource"
		}
	),
	"GET /sources": route("sources.list", "tools:read", "List the tenant's tool sources and the global ones", {
		response: "ToolSources"
	}),
	"GET /sources/:id": route("sources.get", "tools:read", "Read a tool source", { response: "ToolSource" }),
	"DELETE /sources/:id": route("sources.remove", "tools:write", "Delete a tool source and its tools", {
		status: 204
	}),
	"POST /sources/:id/refresh": route("sources.refresh", "tools:write", "Read a source's tools again now", {
		response: "ToolSource"
	}),
	"GET /audit": route("audit.list", "keys:admin", "The tenant's audit trail, newest first", {
		response: "AuditPage"
	}),
	"GET /keys": route(
		"keys.list",
		"keys:admin",
		"The tenant's API keys and when each was last used (never a secret)",
		{ response: "ApiKeys" }
	),
	"DELETE /keys/:key_id": route("keys.revoke", "keys:admin", "Revoke an API key", { status: 204 })
};
