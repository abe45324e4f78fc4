import { dereference } from "@readme/openapi-parser";
import type { JsonObject, ToolDefinition, ValidationProblem } from "../../types/wire";
import { sourceToolName } from "./tool-names";

/** One operation of the document as a tool: `key` (`METHOD /path`) follows it across re-imports. */
export interface ImportedTool {
	key: string;
	definition: ToolDefinition;
}

export type ImportResult = { ok: true; tools: ImportedTool[] } | { ok: false; problems: ValidationProblem[] };

export interface ImportOptions {
	/** The source's name: prefix of every tool name. */
	sourceName: string;
	/** Overrides the document's first server. */
	baseUrl?: string;
	/** Where the document was fetched from: relative server URLs are resolved against it. */
	documentUrl?: string;
	/** Sent with every call (credentials): stored as the tools' secret headers. */
	headers: Record<string, string>;
}

/** The methods an `external_api` tool can send. */
const METHODS = ["get", "post", "put", "patch", "delete"] as const;
const BODY_METHODS = new Set(["post", "put", "patch"]);
const MAX_DESCRIPTION = 4096;
const MAX_TOOLS = 500;

type OpenApiParameter = {
	name: string;
	in: string;
	required?: boolean;
	description?: string;
	schema?: JsonObject;
};
type Operation = {
	operationId?: string;
	summary?: string;
	description?: string;
	tags?: string[];
	parameters?: OpenApiParameter[];
	requestBody?: { required?: boolean; content?: Record<string, { schema?: JsonObject }> };
};

const problem = (field: string, message: string): ImportResult => ({
	ok: false,
	problems: [{ field, message }]
});

/** Every `$ref` that points outside the document, with where it is. */
function remoteRefs(value: unknown, path = "spec", found: string[] = []): string[] {
	if (found.length >= 5 || value === null || typeof value !== "object") return found;
	for (const [key, child] of Object.entries(value)) {
		if (key === "$ref" && typeof child === "string" && !child.startsWith("#")) found.push(`${path}.$ref`);
		else remoteRefs(child, `${path}.${key}`, found);
	}
	return found;
}

const isObject = (value: unknown): value is JsonObject =>
	value !== null && typeof value === "object" && !Array.isArray(value);

/**
 * What the import reads, checked before it reads it. Not a full validation against the OpenAPI
 * schema: compiling that schema takes hundreds of milliseconds of one thread per document, and
 * every schema that becomes a tool's parameters is validated by the registry anyway.
 */
function shapeProblems(doc: JsonObject): ValidationProblem[] {
	const problems: ValidationProblem[] = [];
	if (doc.paths === undefined) return problems;
	if (!isObject(doc.paths)) return [{ field: "spec.paths", message: "must be an object" }];
	for (const [path, item] of Object.entries(doc.paths)) {
		const field = `spec.paths.${path}`;
		if (!path.startsWith("/")) problems.push({ field, message: "must start with /" });
		if (!isObject(item)) {
			problems.push({ field, message: "must be a path item object" });
			continue;
		}
		const operations = METHODS.filter(method => item[method] !== undefined).map(method => [
			`${field}.${method}`,
			item[method]
		]);
		for (const [at, operation] of [[field, item], ...operations] as [string, unknown][]) {
			if (!isObject(operation)) {
				problems.push({ field: at, message: "must be an operation object" });
				continue;
			}
			const parameters = operation.parameters;
			if (parameters === undefined) continue;
			if (!Array.isArray(parameters))
				problems.push({ field: `${at}.parameters`, message: "must be an array" });
			else
				parameters.forEach((parameter, index) => {
					const valid =
						isObject(parameter) &&
						(typeof parameter.$ref === "string" ||
							(typeof parameter.name === "string" && typeof parameter.in === "string"));
					if (!valid)
						problems.push({ field: `${at}.parameters.${index}`, message: "must have a name and an in" });
				});
		}
	}
	return problems.slice(0, 20);
}

/** The server URL with its variables at their defaults, resolved against where the document came from. */
function serverUrl(document: JsonObject, documentUrl?: string): string | null {
	const server = (
		document.servers as { url?: string; variables?: Record<string, { default?: string }> }[]
	)?.[0];
	if (!server?.url) return null;
	const url = server.url.replace(
		/\{([^}]+)\}/g,
		(_m, name: string) => server.variables?.[name]?.default ?? ""
	);
	return URL.canParse(url, documentUrl) ? new URL(url, documentUrl).href : null;
}

const jsonBodySchema = (operation: Operation): JsonObject | undefined => {
	const content = operation.requestBody?.content ?? {};
	const type = Object.keys(content).find(media => /^application\/([\w.+-]*\+)?json\b/i.test(media));
	return type ? (content[type].schema ?? {}) : undefined;
};

function toolOf(
	options: ImportOptions,
	baseUrl: string,
	path: string,
	method: string,
	operation: Operation,
	shared: OpenApiParameter[]
): ToolDefinition {
	// An operation's parameter overrides the path item's of the same name and location.
	const byKey = new Map<string, OpenApiParameter>();
	for (const parameter of [...shared, ...(operation.parameters ?? [])])
		byKey.set(`${parameter.in}:${parameter.name}`, parameter);
	const properties: JsonObject = {};
	const required: string[] = [];
	const query: Record<string, string> = {};
	for (const parameter of byKey.values()) {
		// Header and cookie parameters are the source's to set (its headers), not the model's.
		if (parameter.in !== "path" && parameter.in !== "query") continue;
		properties[parameter.name] = {
			...(parameter.schema ?? { type: "string" }),
			...(parameter.description ? { description: parameter.description } : {})
		};
		if (parameter.required || parameter.in === "path") required.push(parameter.name);
		if (parameter.in === "query" && BODY_METHODS.has(method)) query[parameter.name] = `{{${parameter.name}}}`;
	}
	const body = BODY_METHODS.has(method) ? jsonBodySchema(operation) : undefined;
	if (body) {
		properties.body = body;
		if (operation.requestBody?.required) required.push("body");
	}
	const text = [operation.summary?.trim(), operation.description?.trim()].filter(Boolean).join("\n\n");
	const tags = (operation.tags ?? []).filter(tag => tag.length > 0 && tag.length <= 64).slice(0, 31);
	return {
		name: sourceToolName(options.sourceName, operation.operationId ?? `${method}_${path}`),
		description: (text || `${method.toUpperCase()} ${path}`).slice(0, MAX_DESCRIPTION),
		type: "external_api",
		parameters: { type: "object", properties, ...(required.length ? { required } : {}) },
		config: {
			url: `${baseUrl.replace(/\/+$/, "")}${path.replace(/\{([^{}]+)\}/g, "{{$1}}")}`,
			method: method.toUpperCase(),
			...(Object.keys(options.headers).length ? { headers: options.headers } : {}),
			...(Object.keys(query).length ? { query } : {}),
			...(body ? { body_template: "{{body}}" } : {})
		},
		metadata: { tags: ["openapi", ...tags] }
	};
}

/**
 * Tools of an OpenAPI 3.0/3.1 document, one `external_api` tool per operation. Its `$ref`s are
 * resolved by @readme/openapi-parser; a `$ref` to anything outside the document is refused, so
 * importing never makes the service fetch or read what a tenant names.
 */
export async function importOpenApi(document: unknown, options: ImportOptions): Promise<ImportResult> {
	if (document === null || typeof document !== "object" || Array.isArray(document))
		return problem("spec", "must be an OpenAPI document (a JSON or YAML object)");
	const doc = document as JsonObject;
	if (typeof doc.openapi !== "string" || !/^3\.[01]\./.test(doc.openapi))
		return problem("spec.openapi", 'must be an OpenAPI 3.0 or 3.1 version such as "3.1.0"');
	const remote = remoteRefs(doc);
	if (remote.length)
		return {
			ok: false,
			problems: remote.map(field => ({ field, message: "a $ref outside the document is not allowed" }))
		};
	const shape = shapeProblems(doc);
	if (shape.length) return { ok: false, problems: shape };
	const resolve = { external: false, file: false };
	let resolved: JsonObject;
	try {
		resolved = (await dereference(structuredClone(doc) as never, {
			resolve,
			dereference: { circular: false }
		})) as JsonObject;
	} catch (err) {
		return problem("spec", `cannot be resolved: ${(err as Error).message}`);
	}
	const baseUrl = options.baseUrl ?? serverUrl(resolved, options.documentUrl);
	if (!baseUrl) return problem("base_url", "is required: the document names no usable server");
	const tools: ImportedTool[] = [];
	for (const [path, item] of Object.entries((resolved.paths ?? {}) as Record<string, JsonObject>)) {
		const shared = (item.parameters ?? []) as OpenApiParameter[];
		for (const method of METHODS) {
			const operation = item[method] as Operation | undefined;
			if (!operation) continue;
			if (tools.length >= MAX_TOOLS) return problem("spec.paths", `has more than ${MAX_TOOLS} operations`);
			tools.push({
				key: `${method.toUpperCase()} ${path}`,
				definition: toolOf(options, baseUrl, path, method, operation, shared)
			});
		}
	}
	return { ok: true, tools };
}
