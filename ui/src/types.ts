/** The API's JSON shapes the console reads (snake_case, as on the wire). */

export type JsonSchema = {
	type?: string | string[];
	title?: string;
	description?: string;
	properties?: Record<string, JsonSchema>;
	required?: string[];
	items?: JsonSchema;
	enum?: unknown[];
	default?: unknown;
	minimum?: number;
	maximum?: number;
	format?: string;
	[keyword: string]: unknown;
};

export interface Health {
	state: "unknown" | "healthy" | "unreachable";
	checked_at?: string;
	next_check_at?: string;
	error?: string;
}

export interface Tool {
	id: string;
	tenant_id: string;
	name: string;
	description?: string;
	type: string;
	parameters?: JsonSchema;
	config?: Record<string, unknown>;
	metadata?: { tags?: string[]; category?: string; [key: string]: unknown };
	permissions?: { agents: string[] };
	timeout_ms?: number;
	version: number;
	definition_hash: string;
	status: "pending_validation" | "active" | "invalid" | "disabled";
	health?: Health;
	validation?: { valid?: boolean; errors?: unknown[]; warnings?: unknown[]; [key: string]: unknown };
	created_at: string;
	updated_at: string;
	[field: string]: unknown;
}

export interface Page<T> {
	items: T[];
	next_cursor?: string | null;
}

export interface ExecutionResult {
	execution_id: string;
	tool_id: string;
	tool_name: string;
	status: "completed" | "failed";
	result?: unknown;
	error?: { type: string; message: string };
	execution_time_ms: number;
}

export interface Task {
	task_id: string;
	tenant_id: string;
	created_at: string;
	status: "pending" | "processing" | "completed" | "failed" | "cancelled";
	type: string;
	priority?: number;
	payload: { tool_id?: string; tool_name?: string; parameters?: Record<string, unknown> };
	result?: unknown;
	error?: { type?: string; message?: string };
}

export interface ApiKey {
	key_id: string;
	tenant_id: string;
	scopes: string[];
	agent_id: string | null;
	name: string | null;
	created_at: string;
	last_used_at?: string | null;
	revoked_at?: string | null;
	api_key?: string;
}

export interface Source {
	id: string;
	type: string;
	name: string;
	url?: string;
	base_url?: string;
	health?: Health;
	tool_count?: number;
	last_refresh_at?: string | null;
	next_refresh_at?: string;
	[field: string]: unknown;
}

export interface Usage {
	calls: number;
	completed: number;
	failed: number;
	failures?: Record<string, number>;
	latency_ms: { avg: number; max: number; p50: number; p95: number; p99: number };
}

/** A frame of the `/ws` feed: a tool event or a task event. */
export interface LiveFrame {
	event: string;
	tenant_id?: string;
	task_id?: string;
	timestamp?: string;
	data?: Record<string, unknown>;
}

export const SCOPES = ["tools:read", "tools:write", "tools:execute", "keys:admin"] as const;
export const TOOL_TYPES = [
	"calculator",
	"datetime",
	"external_api",
	"rag_query",
	"rag_search",
	"mcp",
	"moleculer_action"
] as const;
export const TOOL_STATUSES = ["pending_validation", "active", "invalid", "disabled"] as const;
export const HEALTH_STATES = ["unknown", "healthy", "unreachable"] as const;
