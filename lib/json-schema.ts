import Ajv2020, { type ErrorObject, type ValidateFunction } from "ajv/dist/2020";
import type { AnySchema, RegExpEngine } from "ajv/dist/types";
import addFormats from "ajv-formats";
import canonicalize from "canonicalize";
import { LRUCache } from "lru-cache";
import { RE2JS } from "re2js";
import type { JsonObject, ValidationProblem } from "../types/wire";

/**
 * Tenant-supplied JSON Schemas are compiled with ajv (never fastest-validator, which compiles
 * schemas into code). `pattern` keywords run on RE2 (linear time), so a schema cannot carry a
 * ReDoS; size and depth are bounded before ajv sees a schema.
 */
const re2: RegExpEngine = Object.assign(
	(pattern: string, flags: string) => {
		const compiled = RE2JS.compile(pattern);
		// ajv caches compiled patterns by their string form, so it must be distinct per pattern.
		return { test: (s: string) => compiled.matcher(s).find(), toString: () => `/${pattern}/${flags}` };
	},
	{ code: "re2js" }
);

export const MAX_SCHEMA_BYTES = 64 * 1024;
export const MAX_SCHEMA_DEPTH = 32;

/**
 * `uniqueItems` in linear time: ajv compares every pair of object items (15,000 objects take seconds),
 * whereas the canonical JSON of each item (RFC 8785: key order and number spelling do not matter, as
 * JSON Schema equality wants) goes into a set once.
 */
function hasUniqueItems(this: unknown, wanted: boolean, data: unknown[]): boolean {
	if (!wanted) return true;
	const seen = new Set<string | undefined>();
	for (const item of data) {
		const key = canonicalize(item);
		if (seen.has(key)) {
			hasUniqueItems.errors = [
				{ keyword: "uniqueItems", message: "must NOT have duplicate items", params: {} }
			];
			return false;
		}
		seen.add(key);
	}
	return true;
}
hasUniqueItems.errors = undefined as Partial<ErrorObject>[] | undefined;

export function createAjv(): Ajv2020 {
	const ajv = new Ajv2020({ allErrors: true, strict: false, code: { regExp: re2 } });
	addFormats(ajv);
	ajv.removeKeyword("uniqueItems");
	ajv.addKeyword({ keyword: "uniqueItems", type: "array", schemaType: "boolean", validate: hasUniqueItems });
	// ajv compiles the 2020-12 meta-schema when it checks its first schema: 75-120 ms on an idle core,
	// over 500 ms on a busy one. Paid here, while the node starts, not by the first request it serves.
	ajv.defaultMeta();
	return ajv;
}

/**
 * Compiles one of our own schemas (a tool definition's shape): its patterns are ours and run in
 * linear time on native RegExp, where RE2 in JavaScript took 2% of a registration's gateway CPU to
 * match the tool's name. Tenant schemas always go through `createAjv`.
 */
export function compileOwnSchema(schema: AnySchema): ValidateFunction {
	return new Ajv2020({ allErrors: true, strict: false }).compile(schema);
}

/** Renders ajv errors as validation problems (`field` is a dotted path under `prefix`). */
export function toProblems(errors: ErrorObject[] | null | undefined, prefix: string): ValidationProblem[] {
	return (errors ?? []).map(e => {
		const path = e.instancePath.split("/").slice(1).join(".");
		const missing = e.keyword === "required" ? (e.params as { missingProperty: string }).missingProperty : "";
		const extra =
			e.keyword === "additionalProperties"
				? (e.params as { additionalProperty: string }).additionalProperty
				: "";
		const field = [prefix, path, missing || extra].filter(Boolean).join(".");
		return { field, message: extra ? "is not allowed" : (e.message ?? "is invalid") };
	});
}

/**
 * The dialects a `$schema` may name. LLM clients send 2020-12 (MCP's default) or draft-07
 * (what most Zod and Pydantic exporters write); the function-calling subset reads the same in
 * both, so both are checked as 2020-12 and returned exactly as sent.
 */
export const ACCEPTED_DIALECTS = [
	"https://json-schema.org/draft/2020-12/schema",
	"http://json-schema.org/draft-07/schema"
] as const;
const isAcceptedDialect = (uri: unknown) =>
	typeof uri === "string" && (ACCEPTED_DIALECTS as readonly string[]).includes(uri.replace(/#$/, ""));

/** The schema as ajv compiles it: its `$schema`, already checked, is left out. */
const forAjv = (schema: JsonObject): JsonObject => {
	if (schema.$schema === undefined) return schema;
	const { $schema: _dialect, ...rest } = schema;
	return rest;
};

/** `$ref`s that leave the document: ajv would need to load them, so they are refused. */
function remoteRefs(value: unknown, path: string, found: ValidationProblem[] = []): ValidationProblem[] {
	if (value === null || typeof value !== "object") return found;
	for (const [key, child] of Object.entries(value)) {
		if ((key === "$ref" || key === "$dynamicRef") && typeof child === "string" && !child.startsWith("#"))
			found.push({
				field: `${path}.${key}`,
				message: "must point inside the schema (remote references are not allowed)"
			});
		else remoteRefs(child, `${path}.${key}`, found);
	}
	return found;
}

const depthOf = (value: unknown, depth = 0): number => {
	if (depth > MAX_SCHEMA_DEPTH || value === null || typeof value !== "object") return depth;
	let max = depth;
	for (const child of Object.values(value)) max = Math.max(max, depthOf(child, depth + 1));
	return max;
};

/**
 * Checks a tenant's `parameters` schema: an object schema, valid against the draft 2020-12
 * meta-schema, bounded, and compilable (resolvable local `$ref`s, RE2-compatible patterns).
 */
export function checkParametersSchema(
	ajv: Ajv2020,
	schema: unknown,
	field = "parameters"
): ValidationProblem[] {
	if (schema === null || typeof schema !== "object" || Array.isArray(schema))
		return [{ field, message: "must be a JSON Schema object" }];
	if (JSON.stringify(schema).length > MAX_SCHEMA_BYTES)
		return [{ field, message: `must be at most ${MAX_SCHEMA_BYTES} bytes` }];
	if (depthOf(schema) > MAX_SCHEMA_DEPTH)
		return [{ field, message: `must be nested at most ${MAX_SCHEMA_DEPTH} levels` }];
	if ((schema as JsonObject).$schema !== undefined && !isAcceptedDialect((schema as JsonObject).$schema))
		return [{ field: `${field}.$schema`, message: `must be one of: ${ACCEPTED_DIALECTS.join(", ")}` }];
	const s = forAjv(schema as JsonObject);
	const remote = remoteRefs(s, field);
	if (remote.length) return remote;
	if (!ajv.validateSchema(s)) return toProblems(ajv.errors, field);
	if (s.type !== "object") return [{ field: `${field}.type`, message: 'must be "object"' }];
	try {
		ajv.compile(s);
	} catch (err) {
		return [{ field, message: `cannot be compiled: ${(err as Error).message}` }];
	} finally {
		ajv.removeSchema(s);
	}
	return [];
}

/** A compiled validator and the size of the schema it came from (serialised bytes). */
export interface CompiledSchema {
	validate: ValidateFunction;
	schemaBytes: number;
}

/**
 * Compiled parameter validators keyed by tool id and version: a tool's schema is compiled once
 * per version, and the cache is bounded so thousands of tools cannot grow it without limit.
 */
export class SchemaCache {
	private readonly compiled: LRUCache<string, CompiledSchema>;

	constructor(
		private readonly ajv: Ajv2020,
		capacity = 5000
	) {
		this.compiled = new LRUCache({ max: capacity });
	}

	/** The entry of `key` if it is compiled already. */
	lookup(key: string): CompiledSchema | undefined {
		return this.compiled.get(key);
	}

	/** The validator of `schema`, compiled once under `key`; `schemaBytes` is its serialised size, if known. */
	get(key: string, schema: JsonObject, schemaBytes?: number): ValidateFunction {
		const known = this.compiled.get(key);
		if (known) return known.validate;
		const compilable = forAjv(schema);
		const validate = this.ajv.compile(compilable);
		this.ajv.removeSchema(compilable);
		this.compiled.set(key, { validate, schemaBytes: schemaBytes ?? JSON.stringify(schema).length });
		return validate;
	}
}
