import type { Context, Service, ServiceSchema } from "moleculer";
import { DEFINITION_SCHEMA, MAX_CONFIG_BYTES, MAX_METADATA_BYTES } from "../lib/definition";
import { checkParametersSchema, createAjv, toProblems } from "../lib/json-schema";
import { toolFor, toolTypes } from "../tools";
import type { JsonObject, ValidationProblem, ValidationReport } from "../types/wire";

type Ajv = ReturnType<typeof createAjv>;

interface ValidatorMethods {
	definitionProblems(definition: JsonObject): ValidationProblem[];
}

interface ValidatorLocals {
	ajv: Ajv;
	checkShape: ReturnType<Ajv["compile"]>;
	configCheckers: Map<string, ReturnType<Ajv["compile"]>>;
}

type ValidatorThis = Service & ValidatorMethods & ValidatorLocals;

const isObject = (value: unknown): value is JsonObject =>
	value !== null && typeof value === "object" && !Array.isArray(value);

const byteLength = (value: unknown) => (value === undefined ? 0 : JSON.stringify(value).length);

/** Checks tool definitions and reports every problem at once. Stateless: any node may answer. */
const ValidatorService: ServiceSchema<
	Record<string, never>,
	ValidatorMethods,
	ValidatorLocals,
	ValidatorThis
> = {
	name: "validator",

	actions: {
		validate: {
			// The definition is tenant data: its shape is checked with ajv in the handler, never
			// compiled into fastest-validator code.
			params: { $$root: true, type: "object" },
			handler(this: ValidatorThis, ctx: Context<JsonObject>): Omit<ValidationReport, "kind" | "checked_at"> {
				const errors = this.definitionProblems(ctx.params);
				return { valid: errors.length === 0, errors };
			}
		}
	},

	methods: {
		definitionProblems(this: ValidatorThis, definition: JsonObject): ValidationProblem[] {
			const problems = this.checkShape(definition) ? [] : toProblems(this.checkShape.errors, "");
			// Semantic checks run on every field whose shape is right, so one report lists everything.
			const tool = typeof definition.type === "string" ? toolFor(definition.type) : undefined;
			if (typeof definition.type === "string" && !tool)
				problems.push({ field: "type", message: `must be one of: ${Object.keys(toolTypes).join(", ")}` });
			if (typeof definition.description === "string" && !definition.description.trim())
				problems.push({ field: "description", message: "must not be empty: agents choose tools by it" });
			if (isObject(definition.parameters))
				problems.push(...checkParametersSchema(this.ajv, definition.parameters));
			if (byteLength(definition.metadata) > MAX_METADATA_BYTES)
				problems.push({ field: "metadata", message: `must be at most ${MAX_METADATA_BYTES} bytes` });
			const config = definition.config ?? {};
			if (byteLength(config) > MAX_CONFIG_BYTES)
				problems.push({ field: "config", message: `must be at most ${MAX_CONFIG_BYTES} bytes` });
			else if (tool && isObject(config)) {
				const checkConfig = this.configCheckers.get(tool.type)!;
				if (!checkConfig(config)) problems.push(...toProblems(checkConfig.errors, "config"));
				else if (tool.checkConfig) problems.push(...tool.checkConfig(config));
			}
			return problems;
		}
	},

	created(this: ValidatorThis) {
		this.ajv = createAjv();
		this.checkShape = this.ajv.compile(DEFINITION_SCHEMA);
		this.configCheckers = new Map(
			Object.values(toolTypes).map(tool => [tool.type, this.ajv.compile(tool.configSchema)])
		);
	}
};

export default ValidatorService;
