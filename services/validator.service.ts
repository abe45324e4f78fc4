import type { Context, Service, ServiceSchema } from "moleculer";
import { DEFINITION_SCHEMA, MAX_CONFIG_BYTES, MAX_METADATA_BYTES } from "../lib/definition";
import { checkDescriptions } from "../lib/description-guard";
import { config } from "../lib/config";
import { compileOwnSchema, createAjv, toProblems } from "../lib/json-schema";
import { AddressGuard } from "../lib/outbound/address-guard";
import { DEFAULT_SCHEMA_GUARD, SchemaGuard, type SchemaGuardOptions } from "../lib/schema-guard";
import { toolFor, toolTypes } from "../tools";
import type { JsonObject, ValidationProblem, ValidationReport } from "../types/wire";

type Ajv = ReturnType<typeof createAjv>;

interface ValidatorSettings {
	/** What checking a tenant schema may do on the event loop, and the limits of the schema threads. */
	schemaGuard: SchemaGuardOptions;
	/** OUTBOUND_ALLOW_HOSTS: a literal address a tool may not call is refused at registration already. */
	outboundAllowHosts: string[];
}

interface ValidatorMethods {
	definitionProblems(definition: JsonObject): Promise<ValidationProblem[]>;
}

interface ValidatorLocals {
	ajv: Ajv;
	checkShape: ReturnType<Ajv["compile"]>;
	configCheckers: Map<string, ReturnType<Ajv["compile"]>>;
	schemas: SchemaGuard;
	addresses: AddressGuard;
}

type ValidatorThis = Service<ValidatorSettings> & ValidatorMethods & ValidatorLocals;

const isObject = (value: unknown): value is JsonObject =>
	value !== null && typeof value === "object" && !Array.isArray(value);

const byteLength = (value: unknown) => (value === undefined ? 0 : JSON.stringify(value).length);

/** Checks tool definitions and reports every problem at once. Stateless: any node may answer. */
const ValidatorService: ServiceSchema<ValidatorSettings, ValidatorMethods, ValidatorLocals, ValidatorThis> = {
	name: "validator",

	settings: {
		schemaGuard: DEFAULT_SCHEMA_GUARD,
		outboundAllowHosts: config().outboundAllowHosts
	},

	actions: {
		validate: {
			// The definition is tenant data: its shape is checked with ajv in the handler, never
			// compiled into fastest-validator code.
			params: { $$root: true, type: "object" },
			async handler(
				this: ValidatorThis,
				ctx: Context<JsonObject>
			): Promise<Omit<ValidationReport, "kind" | "checked_at">> {
				const errors = await this.definitionProblems(ctx.params);
				// Whether a warning refuses the definition is the registry's call (tenant policy).
				const warnings = checkDescriptions(ctx.params);
				return { valid: errors.length === 0, errors, ...(warnings.length ? { warnings } : {}) };
			}
		}
	},

	methods: {
		async definitionProblems(this: ValidatorThis, definition: JsonObject): Promise<ValidationProblem[]> {
			const problems = this.checkShape(definition) ? [] : toProblems(this.checkShape.errors, "");
			// Semantic checks run on every field whose shape is right, so one report lists everything.
			const tool = typeof definition.type === "string" ? toolFor(definition.type) : undefined;
			if (typeof definition.type === "string" && !tool)
				problems.push({ field: "type", message: `must be one of: ${Object.keys(toolTypes).join(", ")}` });
			if (typeof definition.description === "string" && !definition.description.trim())
				problems.push({ field: "description", message: "must not be empty: agents choose tools by it" });
			if (isObject(definition.parameters))
				problems.push(...(await this.schemas.check(definition.parameters)));
			if (isObject(definition.output_schema))
				problems.push(...(await this.schemas.check(definition.output_schema, "output_schema")));
			if (byteLength(definition.metadata) > MAX_METADATA_BYTES)
				problems.push({ field: "metadata", message: `must be at most ${MAX_METADATA_BYTES} bytes` });
			const config = definition.config ?? {};
			if (byteLength(config) > MAX_CONFIG_BYTES)
				problems.push({ field: "config", message: `must be at most ${MAX_CONFIG_BYTES} bytes` });
			else if (tool && isObject(config)) {
				const checkConfig = this.configCheckers.get(tool.type)!;
				if (!checkConfig(config)) problems.push(...toProblems(checkConfig.errors, "config"));
				else if (tool.checkConfig) problems.push(...tool.checkConfig(config, this.addresses));
			}
			return problems;
		}
	},

	created(this: ValidatorThis) {
		this.ajv = createAjv();
		this.schemas = new SchemaGuard(this.ajv, this.settings.schemaGuard);
		this.checkShape = compileOwnSchema(DEFINITION_SCHEMA);
		this.addresses = new AddressGuard(this.settings.outboundAllowHosts);
		this.configCheckers = new Map(
			Object.values(toolTypes).map(tool => [tool.type, this.ajv.compile(tool.configSchema)])
		);
	},

	stopped(this: ValidatorThis) {
		return this.schemas.close();
	}
};

export default ValidatorService;
