import type { JsonObject } from "../../types/wire";
import { stripHidden, stripHiddenDeep } from "../description-guard";
import type { RankedTool } from "../discovery/tenant-index";
import { definitionHashes } from "./native";

/** Keywords OpenAI's strict mode (Structured Outputs) does not accept in a function's schema. */
const UNSUPPORTED_KEYWORDS = [
	"allOf",
	"not",
	"if",
	"then",
	"else",
	"dependentRequired",
	"dependentSchemas",
	"patternProperties",
	"unevaluatedProperties",
	"unevaluatedItems",
	"propertyNames",
	"contains"
];

/** Why strict mode would reject a schema (empty when it would accept it). */
export function strictModeProblems(schema: unknown, path = "parameters"): string[] {
	if (schema === null || typeof schema !== "object") return [];
	const node = schema as JsonObject;
	const problems: string[] = [];
	for (const keyword of UNSUPPORTED_KEYWORDS)
		if (node[keyword] !== undefined) problems.push(`${path}: '${keyword}' is not supported`);
	const properties = node.properties as Record<string, unknown> | undefined;
	if (node.type === "object" || properties) {
		if (node.additionalProperties !== false) problems.push(`${path}: additionalProperties must be false`);
		const required = new Set(Array.isArray(node.required) ? (node.required as string[]) : []);
		const optional = Object.keys(properties ?? {}).filter(name => !required.has(name));
		if (optional.length) problems.push(`${path}: every property must be required (${optional.join(", ")})`);
	}
	for (const [name, child] of Object.entries(properties ?? {}))
		problems.push(...strictModeProblems(child, `${path}.${name}`));
	if (node.items) problems.push(...strictModeProblems(node.items, `${path}[]`));
	for (const keyword of ["anyOf", "oneOf"])
		if (Array.isArray(node[keyword]))
			(node[keyword] as unknown[]).forEach((branch, i) =>
				problems.push(...strictModeProblems(branch, `${path}.${keyword}[${i}]`))
			);
	for (const [name, child] of Object.entries((node.$defs as Record<string, unknown>) ?? {}))
		problems.push(...strictModeProblems(child, `${path}.$defs.${name}`));
	return problems;
}

/**
 * `openai`: Chat Completions / Responses function tools. `strict` is set on the definitions strict
 * mode accepts; `strict_mode.incompatible` says why the others would be rejected with `strict: true`.
 * Hidden characters are stripped; the hashes to pin with sit beside `tools`, which stays exactly
 * what the API accepts.
 */
export function toOpenAi(ranked: RankedTool[]) {
	const incompatible: { name: string; reasons: string[] }[] = [];
	const tools = ranked.map(({ tool }) => {
		const reasons = strictModeProblems(tool.parameters);
		if (reasons.length) incompatible.push({ name: tool.name, reasons });
		return {
			type: "function" as const,
			function: {
				name: tool.name,
				description: stripHidden(tool.description),
				parameters: stripHiddenDeep(tool.parameters),
				strict: reasons.length === 0
			}
		};
	});
	return { tools, strict_mode: { incompatible }, definition_hashes: definitionHashes(ranked) };
}
