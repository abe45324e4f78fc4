import type { JsonObject } from "../types/wire";

/**
 * JSON Schema from a Moleculer action's fastest-validator `params`, for actions that declare
 * `tool` without their own `parameters`. Covers the rule types actions commonly use; anything
 * else becomes an unconstrained value rather than a wrong constraint.
 */
export function paramsToJsonSchema(params: unknown): JsonObject {
	if (!params || typeof params !== "object") return { type: "object", properties: {} };
	const properties: JsonObject = {};
	const required: string[] = [];
	for (const [key, rule] of Object.entries(params as JsonObject)) {
		if (key.startsWith("$$")) continue;
		const { schema, optional } = ruleToSchema(rule);
		properties[key] = schema;
		if (!optional) required.push(key);
	}
	return { type: "object", properties, ...(required.length ? { required } : {}) };
}

type Rule = JsonObject & { type?: string };

/** Shorthand rules read `"string|optional|min:3"`. */
function parseShorthand(rule: string): Rule {
	const [type, ...flags] = rule.split("|");
	const parsed: Rule = { type: type.trim() };
	for (const flag of flags) {
		const [name, value] = flag.split(":");
		parsed[name.trim()] = value === undefined ? true : isNaN(Number(value)) ? value : Number(value);
	}
	return parsed;
}

function ruleToSchema(input: unknown): { schema: JsonObject; optional: boolean } {
	if (Array.isArray(input)) {
		const variants = input.map(ruleToSchema);
		return { schema: { anyOf: variants.map(v => v.schema) }, optional: variants.some(v => v.optional) };
	}
	const rule: Rule =
		typeof input === "string"
			? parseShorthand(input)
			: input && typeof input === "object"
				? (input as Rule)
				: {};
	const optional = rule.optional === true || rule.default !== undefined;
	const described = (schema: JsonObject): JsonObject => ({
		...schema,
		...(typeof rule.description === "string" ? { description: rule.description } : {}),
		...(rule.default !== undefined ? { default: rule.default } : {})
	});
	const bounds = (min: string, max: string) => ({
		...(typeof rule.min === "number" ? { [min]: rule.min } : {}),
		...(typeof rule.max === "number" ? { [max]: rule.max } : {})
	});
	switch (rule.type) {
		case "string":
			return { schema: described({ type: "string", ...bounds("minLength", "maxLength") }), optional };
		case "number":
			return {
				schema: described({ type: rule.integer ? "integer" : "number", ...bounds("minimum", "maximum") }),
				optional
			};
		case "boolean":
			return { schema: described({ type: "boolean" }), optional };
		case "email":
			return { schema: described({ type: "string", format: "email" }), optional };
		case "url":
			return { schema: described({ type: "string", format: "uri" }), optional };
		case "uuid":
			return { schema: described({ type: "string", format: "uuid" }), optional };
		case "date":
			return { schema: described({ type: "string", format: "date-time" }), optional };
		case "enum":
			return { schema: described({ enum: Array.isArray(rule.values) ? rule.values : [] }), optional };
		case "equal":
			return { schema: described({ const: rule.value }), optional };
		case "array":
			return {
				schema: described({
					type: "array",
					...(rule.items !== undefined ? { items: ruleToSchema(rule.items).schema } : {}),
					...bounds("minItems", "maxItems")
				}),
				optional
			};
		case "object": {
			const props = rule.props ?? rule.properties;
			return { schema: described(props ? paramsToJsonSchema(props) : { type: "object" }), optional };
		}
		default:
			return { schema: described({}), optional };
	}
}
