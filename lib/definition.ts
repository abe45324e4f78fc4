import type { JsonObject, ToolDefinition } from "../types/wire";

export const TOOL_NAME_PATTERN = "^[a-zA-Z][a-zA-Z0-9_-]{0,63}$";
export const DEFAULT_TIMEOUT_MS = 5000;
export const MAX_TIMEOUT_MS = 300000;

/** Fields the server owns: accepted in a body (so a read can be sent back) but never taken from it. */
export const SERVER_OWNED_FIELDS = [
	"id",
	"tenant_id",
	"version",
	"definition_hash",
	"status",
	"health",
	"validation",
	"created_at",
	"updated_at"
] as const;

export const DEFINITION_FIELDS = [
	"name",
	"description",
	"type",
	"parameters",
	"config",
	"metadata",
	"permissions",
	"timeout_ms",
	"output_schema",
	"output_validation",
	"annotations"
] as const;

/** What a run does with a result that does not match the tool's `output_schema`. */
export const OUTPUT_VALIDATION_MODES = ["off", "warn", "strict"] as const;
export const DEFAULT_OUTPUT_VALIDATION = "warn";

/** The definition fields of a body, without server-owned or control fields. */
export function pickDefinition(body: JsonObject): Partial<ToolDefinition> {
	const definition: JsonObject = {};
	for (const field of DEFINITION_FIELDS) if (body[field] !== undefined) definition[field] = body[field];
	return definition as Partial<ToolDefinition>;
}

/**
 * Shape of a definition (trusted, compiled once by ajv). Semantic checks — the type exists,
 * its config, the parameters being a valid JSON Schema — are done by the validator service.
 */
export const DEFINITION_SCHEMA = {
	type: "object",
	properties: {
		name: { type: "string", pattern: TOOL_NAME_PATTERN },
		description: { type: "string", maxLength: 4096 },
		type: { type: "string", maxLength: 64 },
		parameters: { type: "object" },
		config: { type: "object" },
		metadata: {
			type: "object",
			properties: {
				tags: {
					type: "array",
					maxItems: 32,
					items: { type: "string", minLength: 1, maxLength: 64 }
				},
				category: { type: "string", maxLength: 64 }
			}
		},
		permissions: {
			type: "object",
			properties: {
				agents: {
					type: "array",
					minItems: 1,
					maxItems: 1000,
					items: { type: "string", minLength: 1, maxLength: 128 }
				}
			},
			required: ["agents"],
			additionalProperties: false
		},
		timeout_ms: { type: "integer", minimum: 1, maximum: MAX_TIMEOUT_MS },
		output_schema: { type: "object" },
		output_validation: { enum: OUTPUT_VALIDATION_MODES },
		annotations: {
			type: "object",
			properties: {
				title: { type: "string", minLength: 1, maxLength: 128 },
				read_only: { type: "boolean" },
				destructive: { type: "boolean" },
				idempotent: { type: "boolean" },
				open_world: { type: "boolean" }
			},
			additionalProperties: false
		},
		...Object.fromEntries(SERVER_OWNED_FIELDS.map(field => [field, {}])),
		expected_version: {}
	},
	required: ["name", "description", "type"],
	additionalProperties: false
} as const;

/** Free-form objects of a definition are bounded so one tool cannot bloat every read and index. */
export const MAX_CONFIG_BYTES = 32 * 1024;
export const MAX_METADATA_BYTES = 16 * 1024;
