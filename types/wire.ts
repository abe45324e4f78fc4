/** Wire shapes of tools, keys and caller identity (snake_case, as they travel over REST and the transporter). */

/** Every status a tool can have: the one list the code, the validators and the OpenAPI document use. */
export const TOOL_STATUSES = ["pending_validation", "active", "invalid", "disabled"] as const;
export type ToolStatus = (typeof TOOL_STATUSES)[number];

/** Failure classes of an execution result (`error.type`). */
export const FAILURE_TYPES = ["timeout", "tool_error", "upstream_error", "output_invalid"] as const;
export type FailureType = (typeof FAILURE_TYPES)[number];

export type JsonObject = Record<string, unknown>;

export interface ToolPermissions {
	agents: string[];
}

export interface ValidationProblem {
	field: string;
	message: string;
}

/** Something a definition may do wrong without being unusable (see lib/description-guard.ts). */
export interface ValidationWarning extends ValidationProblem {
	/** Stable name of the check that found it, e.g. `hidden_characters`. */
	rule: string;
}

export interface ValidationReport {
	valid: boolean;
	errors: ValidationProblem[];
	/** Findings that do not make the definition invalid under the tenant's policy. */
	warnings?: ValidationWarning[];
	kind: "definition" | "functional";
	checked_at: string;
}

/**
 * Whether a tool's upstream answers, apart from whether its definition is valid: a tool whose
 * upstream does not answer stays `active` (and runnable) and is probed again with backoff.
 */
export interface ToolHealth {
	state: "unknown" | "healthy" | "unreachable";
	checked_at?: string;
	/** When an unreachable tool is probed next. */
	next_check_at?: string;
	error?: string;
}

/** What a caller may send when registering or updating a tool. */
export interface ToolDefinition {
	name: string;
	description: string;
	type: string;
	parameters?: JsonObject;
	config?: JsonObject;
	metadata?: JsonObject;
	permissions?: ToolPermissions;
	timeout_ms?: number;
	/** JSON Schema (an object schema) of the tool's `result`. */
	output_schema?: JsonObject;
	/** What a run does with a result that does not match `output_schema` (default `warn`). */
	output_validation?: OutputValidation;
	annotations?: ToolAnnotations;
}

export type OutputValidation = "off" | "warn" | "strict";

/** Hints for clients about what a tool does (exported as MCP tool annotations). */
export interface ToolAnnotations {
	title?: string;
	read_only?: boolean;
	destructive?: boolean;
	idempotent?: boolean;
	open_world?: boolean;
}

/** A tool as stored and as every read returns it (secrets masked on the way out). */
export interface StoredTool {
	id: string;
	tenant_id: string;
	name: string;
	description: string;
	type: string;
	parameters: JsonObject;
	config: JsonObject;
	metadata: JsonObject;
	permissions: ToolPermissions;
	timeout_ms: number;
	output_schema?: JsonObject;
	output_validation?: OutputValidation;
	annotations?: ToolAnnotations;
	version: number;
	/** `sha256:<hex>` of the canonical definition of this version (see lib/definition-hash.ts). */
	definition_hash: string;
	status: ToolStatus;
	health: ToolHealth;
	validation?: ValidationReport;
	created_at: string;
	updated_at: string;
}

export const SCOPES = ["tools:read", "tools:write", "tools:execute", "keys:admin"] as const;
export type Scope = (typeof SCOPES)[number];

/** An API key as stored: the secret itself is never kept, only its SHA-256. */
export interface ApiKeyRecord {
	key_id: string;
	tenant_id: string;
	agent_id: string | null;
	name: string | null;
	scopes: Scope[];
	secret_hash: string;
	created_at: string;
	revoked_at: string | null;
}

/** Identity carried in `ctx.meta` from the gateway (or set by a trusted node) to every action. */
export interface CallerMeta {
	tenant_id?: string;
	agent_id?: string | null;
	/** Set by the gateway only; nodes on the transporter are trusted and carry no scopes. */
	scopes?: readonly Scope[];
	auth?: "service_token" | "api_key";
	/** The API key that authenticated the caller (for the audit trail). */
	key_id?: string;
}

export type SourceType = "mcp" | "openapi";

/** `health` of a tool source: whether its server answered the last time it was asked. */
export interface SourceHealth {
	state: "unknown" | "healthy" | "unreachable";
	checked_at?: string;
	next_check_at?: string;
	error?: string;
	/** Failed attempts in a row; the next probe waits longer after each. */
	failures: number;
}

/** Where many tools come from at once: a remote MCP server or an OpenAPI document (headers masked in reads). */
export interface ToolSource {
	id: string;
	tenant_id: string;
	type: SourceType;
	name: string;
	/** MCP server endpoint, or where the OpenAPI document is fetched from. */
	url?: string;
	/** The OpenAPI document given inline. */
	spec?: JsonObject;
	base_url?: string;
	headers: Record<string, string>;
	health: SourceHealth;
	/** The source's tools by their remote key (MCP tool name, OpenAPI operation): tool ids. */
	tools: Record<string, string>;
	/** Keys of tools the source disabled because the remote no longer offers them. */
	removed: string[];
	tool_count: number;
	last_refresh_at: string | null;
	/** When the next periodic refresh is due; the node that moves it forward does the refresh. */
	next_refresh_at: string;
	created_at: string;
	updated_at: string;
}
