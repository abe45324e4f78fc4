import { DEFINITION_FIELDS, DEFINITION_SCHEMA, SERVER_OWNED_FIELDS } from "./definition";
import { TASK_STATUSES, TASK_TYPES } from "./tasks/task-queue";
import { FAILURE_TYPES, SCOPES, TOOL_STATUSES } from "../types/wire";

/**
 * The response bodies of the REST API, as `/openapi.json` publishes them under
 * `#/components/schemas`. test/integration/openapi-responses.test.ts checks every route's real
 * answers against these, reading an object that lists its properties as closed: a field added to
 * or dropped from a response without changing its schema here fails that suite.
 */

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const dateTime = { type: "string", format: "date-time" };
const nullable = (schema: Record<string, unknown>) => ({ anyOf: [schema, { type: "null" }] });
const listOf = (item: Record<string, unknown>) => ({
	type: "object",
	properties: { items: { type: "array", items: item } },
	required: ["items"]
});
const pageOf = (name: string) => ({
	type: "object",
	properties: { items: { type: "array", items: ref(name) }, next_cursor: { type: ["string", "null"] } },
	required: ["items", "next_cursor"]
});
/** An object whose keys are the caller's own (metadata, a tool's JSON Schema): never closed. */
const open = (description?: string) => ({
	type: "object",
	additionalProperties: true,
	...(description ? { description } : {})
});
const problem = {
	type: "object",
	properties: { field: { type: "string" }, message: { type: "string" } },
	required: ["field", "message"]
};
const health = (extra: Record<string, unknown> = {}) => ({
	type: "object",
	properties: {
		state: { enum: ["unknown", "healthy", "unreachable"] },
		checked_at: dateTime,
		next_check_at: dateTime,
		error: { type: "string" },
		...extra
	},
	required: ["state"]
});

const definitionFields = Object.fromEntries(
	Object.entries(DEFINITION_SCHEMA.properties).filter(
		([name]) => !(SERVER_OWNED_FIELDS as readonly string[]).includes(name) && name !== "expected_version"
	)
);

/** Definition fields a stored tool has only when its definition set them; the others get defaults. */
const OPTIONAL_DEFINITION_FIELDS: readonly string[] = ["output_schema", "output_validation", "annotations"];

const STORED_TOOL = {
	type: "object",
	properties: {
		...definitionFields,
		parameters: open("The tool's parameters as JSON Schema"),
		config: open("Type-specific settings; secrets masked"),
		metadata: { ...DEFINITION_SCHEMA.properties.metadata, additionalProperties: true },
		output_schema: open(),
		id: { type: "string" },
		tenant_id: { type: "string", description: "`*` for global tools" },
		version: { type: "integer", minimum: 1 },
		definition_hash: { type: "string", pattern: "^sha256:[0-9a-f]{64}$" },
		status: { enum: [...TOOL_STATUSES] },
		health: ref("ToolHealth"),
		validation: ref("ValidationReport"),
		created_at: dateTime,
		updated_at: dateTime
	},
	required: [
		"id",
		"tenant_id",
		...DEFINITION_FIELDS.filter(field => !OPTIONAL_DEFINITION_FIELDS.includes(field)),
		"version",
		"definition_hash",
		"status",
		"health",
		"created_at",
		"updated_at"
	]
};

const API_KEY_FIELDS = {
	key_id: { type: "string" },
	tenant_id: { type: "string" },
	agent_id: { type: ["string", "null"] },
	name: { type: ["string", "null"] },
	scopes: { type: "array", items: { enum: [...SCOPES] } },
	created_at: dateTime,
	revoked_at: nullable(dateTime)
};
const API_KEY_REQUIRED = Object.keys(API_KEY_FIELDS);

const SOURCE = {
	type: "object",
	properties: {
		id: { type: "string" },
		tenant_id: { type: "string" },
		type: { enum: ["mcp", "openapi"] },
		name: { type: "string" },
		url: { type: "string" },
		base_url: { type: "string" },
		spec_included: { const: true, description: "The OpenAPI document was given inline (not shown)" },
		headers: { type: "object", additionalProperties: { type: "string" }, description: "Values masked" },
		health: health({ failures: { type: "integer", minimum: 0 } }),
		tool_count: { type: "integer", minimum: 0 },
		tool_ids: { type: "array", items: { type: "string" } },
		last_refresh_at: nullable(dateTime),
		created_at: dateTime,
		updated_at: dateTime,
		changes: {
			type: "object",
			description: "What the refresh changed (create and refresh only)",
			properties: {
				added: { type: "array", items: { type: "string" } },
				updated: { type: "array", items: { type: "string" } },
				disabled: { type: "array", items: { type: "string" } },
				enabled: { type: "array", items: { type: "string" } },
				skipped: {
					type: "array",
					items: {
						type: "object",
						properties: { name: { type: "string" }, reason: { type: "string" } },
						required: ["name", "reason"]
					}
				}
			},
			required: ["added", "updated", "disabled", "enabled", "skipped"]
		}
	},
	required: [
		"id",
		"tenant_id",
		"type",
		"name",
		"headers",
		"health",
		"tool_count",
		"tool_ids",
		"last_refresh_at",
		"created_at",
		"updated_at"
	]
};

/** Tools in the shape another client reads (OpenAI, Anthropic, MCP): documented by those clients. */
const FOREIGN_TOOLS = {
	type: "array",
	items: { type: "object", description: "One tool in the requested format's own shape" }
};

export const RESPONSE_SCHEMAS = {
	Error: {
		type: "object",
		properties: {
			name: { type: "string" },
			message: { type: "string" },
			code: { type: "integer" },
			type: { type: "string", examples: ["VALIDATION_ERROR", "NOT_FOUND"] },
			data: {}
		},
		required: ["name", "message", "code", "type"]
	},
	Health: {
		type: "object",
		properties: { status: { const: "ok" } },
		required: ["status"]
	},
	Readiness: {
		type: "object",
		properties: {
			status: { enum: ["ready", "unavailable"] },
			checks: { type: "object", additionalProperties: { enum: ["ok", "down"] } },
			failed: { type: "array", items: { type: "string" } }
		},
		required: ["status", "checks", "failed"]
	},
	ToolHealth: health(),
	StoredTool: STORED_TOOL,
	ToolPage: pageOf("StoredTool"),
	ToolVersion: {
		type: "object",
		properties: {
			version: { type: "integer", minimum: 1 },
			definition_hash: { type: "string" },
			updated_at: dateTime
		},
		required: ["version", "definition_hash", "updated_at"]
	},
	ToolVersions: listOf(ref("ToolVersion")),
	ToolUsage: {
		type: "object",
		properties: {
			tool_id: { type: "string" },
			tenant_id: { type: "string" },
			calls: { type: "integer", minimum: 0 },
			completed: { type: "integer", minimum: 0 },
			failed: { type: "integer", minimum: 0 },
			failures: {
				type: "object",
				properties: Object.fromEntries(FAILURE_TYPES.map(type => [type, { type: "integer", minimum: 0 }])),
				required: [...FAILURE_TYPES]
			},
			latency_ms: {
				type: "object",
				properties: Object.fromEntries(["avg", "max", "p50", "p95", "p99"].map(k => [k, { type: "number" }])),
				required: ["avg", "max", "p50", "p95", "p99"]
			}
		},
		required: ["tool_id", "tenant_id", "calls", "completed", "failed", "failures", "latency_ms"]
	},
	ValidationReport: {
		type: "object",
		properties: {
			valid: { type: "boolean" },
			errors: { type: "array", items: problem },
			warnings: {
				type: "array",
				items: {
					type: "object",
					properties: { field: { type: "string" }, rule: { type: "string" }, message: { type: "string" } },
					required: ["field", "rule", "message"]
				}
			},
			kind: { enum: ["definition", "functional"] },
			checked_at: dateTime
		},
		required: ["valid", "errors"]
	},
	Discovery: {
		description: "`native` (full or summary view), or `tools` in the format asked for",
		oneOf: [
			listOf({
				type: "object",
				properties: {
					tool: ref("StoredTool"),
					score: { type: "number" },
					match: { enum: ["lexical", "semantic", "both"] },
					health: ref("ToolHealth")
				},
				required: ["tool", "score", "health"]
			}),
			listOf({
				type: "object",
				properties: {
					id: { type: "string" },
					name: { type: "string" },
					description: { type: "string" },
					type: { type: "string" },
					score: { type: "number" },
					health: {
						type: "object",
						properties: { state: { enum: ["unknown", "healthy", "unreachable"] } },
						required: ["state"]
					}
				},
				required: ["id", "name", "description", "type", "score", "health"]
			}),
			{
				type: "object",
				properties: {
					tools: FOREIGN_TOOLS,
					strict_mode: {
						type: "object",
						description: "openai: tools whose parameters OpenAI's strict mode cannot take",
						properties: { incompatible: { type: "array", items: { type: "string" } } }
					},
					definition_hashes: {
						type: "object",
						additionalProperties: { type: "string" },
						description: "Tool name → definition_hash (openai, anthropic)"
					}
				},
				required: ["tools"]
			}
		]
	},
	ExecutionResult: {
		type: "object",
		properties: {
			execution_id: { type: "string" },
			tool_id: { type: "string" },
			tool_name: { type: "string" },
			status: { enum: ["completed", "failed"] },
			result: open(),
			error: {
				type: "object",
				properties: { type: { enum: [...FAILURE_TYPES] }, message: { type: "string" } },
				required: ["type", "message"]
			},
			execution_time_ms: { type: "number" },
			output_problems: {
				description: "How the result misses the tool's output_schema (tools with output_validation warn)",
				type: "array",
				items: problem
			}
		},
		required: ["execution_id", "tool_id", "tool_name", "status", "execution_time_ms"]
	},
	ProbeQueued: {
		type: "object",
		description: "The functional check runs as this `tool_validation` task",
		properties: { task_id: { type: "string" } },
		required: ["task_id"]
	},
	TaskAccepted: {
		type: "object",
		properties: { task_id: { type: "string" }, status: { const: "pending" } },
		required: ["task_id", "status"]
	},
	Task: {
		type: "object",
		description: "The standard queue message with the current status",
		properties: {
			task_id: { type: "string" },
			tenant_id: { type: "string" },
			created_at: dateTime,
			updated_at: dateTime,
			status: { enum: [...TASK_STATUSES] },
			type: { enum: [...TASK_TYPES] },
			priority: { type: "integer", minimum: 0, maximum: 9 },
			metadata: open(),
			payload: open(),
			callback_url: { type: "string" },
			result: open(),
			error: open(),
			attempts: { type: "integer", minimum: 0, description: "Deliveries so far (1 on the first run)" }
		},
		required: [
			"task_id",
			"tenant_id",
			"created_at",
			"updated_at",
			"status",
			"type",
			"priority",
			"metadata",
			"payload",
			"attempts"
		]
	},
	ApiKey: {
		type: "object",
		properties: { ...API_KEY_FIELDS, last_used_at: nullable(dateTime) },
		required: [...API_KEY_REQUIRED, "last_used_at"]
	},
	CreatedApiKey: {
		type: "object",
		description: "The new key; `api_key` is its secret, shown this once",
		properties: { ...API_KEY_FIELDS, api_key: { type: "string", pattern: "^trk_" } },
		required: [...API_KEY_REQUIRED, "api_key"]
	},
	ApiKeys: listOf(ref("ApiKey")),
	ToolSource: SOURCE,
	ToolSources: listOf(ref("ToolSource")),
	AuditEntry: {
		type: "object",
		properties: {
			id: { type: "string" },
			at: dateTime,
			tenant_id: { type: "string" },
			actor: {
				type: "object",
				properties: {
					kind: { enum: ["service", "key"] },
					key_id: { type: "string" },
					agent_id: { type: "string" }
				},
				required: ["kind"]
			},
			action: { type: "string" },
			target: { type: "string" },
			definition_hash: { type: "string" },
			outcome: { type: "string" },
			details: open()
		},
		required: ["id", "at", "tenant_id", "actor", "action", "target", "outcome"]
	},
	AuditPage: pageOf("AuditEntry")
};

export type ResponseSchemaName = keyof typeof RESPONSE_SCHEMAS;
