import type { JsonObject, ValidationWarning } from "../types/wire";

/**
 * Checks of the texts a model reads (a tool's description, its parameters' descriptions and
 * titles) for "tool poisoning": instructions aimed at the model rather than at the person who
 * picks the tool, and characters a person cannot see. Each rule is one named pattern, listed
 * here and tested in test/unit/description-guard.test.ts; a finding is a warning, and the tenant's
 * policy (lib/description-policy.ts) decides whether it refuses the definition.
 */
export interface DescriptionRule {
	rule: string;
	message: string;
	pattern: RegExp;
}

export const DESCRIPTION_RULES: readonly DescriptionRule[] = [
	{
		rule: "model_directive_block",
		message: "contains a block addressed to the model (<IMPORTANT>, <SYSTEM>, [INST], ...)",
		pattern:
			/<\s*\/?\s*(important|system|instructions?|admin|secret|hidden|assistant)\b[^>]*>|\[\/?INST\]|<\|(im_start|im_end|system|endoftext)\|>/i
	},
	{
		rule: "override_instructions",
		message: "asks the model to ignore or replace its instructions",
		pattern:
			/\b(ignore|disregard|forget|override|bypass)\b.{0,20}\b(previous|prior|above|earlier|preceding|other|all|any|system)\b.{0,20}\b(instructions?|prompts?|rules?|directions?|guidelines?|tools?)\b/i
	},
	{
		rule: "conceal_from_user",
		message: "asks the model to hide something from the user",
		pattern:
			/\b(do not|don'?t|never|without)\s+(tell|telling|mention|mentioning|inform|informing|reveal|revealing|show|showing|alert|alerting|notify|notifying)\b.{0,40}\b(user|human|person|operator)\b/i
	},
	{
		rule: "read_sensitive_files",
		message: "asks the model to read local files or credentials",
		pattern:
			/\b(read|open|cat|access|load|include|attach|fetch|pass)\b.{0,60}(~\/|\.ssh\b|id_rsa|id_ed25519|\.env\b|\/etc\/(passwd|shadow)|\.aws\b|\.npmrc|\.netrc|mcp\.json|private[ _-]?key|credentials?\s+file|config(uration)?\s+files?)/i
	},
	{
		rule: "send_data_elsewhere",
		message: "asks the model to send data to another place",
		pattern:
			/\b(send|post|upload|forward|transmit|exfiltrate|e-?mail|leak|copy)\b.{0,80}\b(to|at|into)\s+(https?:\/\/|[\w.+-]+@[\w-]+\.[\w.]+|the\s+(following|this)\s+(url|address|endpoint|server))/i
	}
];

/**
 * Characters a reader cannot see: Unicode format characters (zero-width spaces and joiners'
 * relatives, bidirectional overrides and isolates, tag characters that smuggle ASCII, BOM, soft
 * hyphen) and control characters other than tab and line breaks. The zero-width joiner is kept
 * (it builds emoji sequences and cannot spell text by itself).
 */
const HIDDEN_CHARACTERS = /(?!\u200d)[\p{Cf}]|[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]/gu;

export interface DescriptionLimits {
	/** A tool description longer than this is flagged (long texts hide instructions past what people read). */
	maxToolDescription: number;
	/** The same for a parameter's description or title. */
	maxParameterDescription: number;
}

export const DEFAULT_DESCRIPTION_LIMITS: DescriptionLimits = {
	maxToolDescription: 2000,
	maxParameterDescription: 1000
};

/** Every text of a definition a model reads, with the field path a warning names. */
function* modelTexts(definition: JsonObject): Generator<{ field: string; text: string; isTool: boolean }> {
	if (typeof definition.description === "string")
		yield { field: "description", text: definition.description, isTool: true };
	if (definition.parameters && typeof definition.parameters === "object")
		yield* schemaTexts(definition.parameters, "parameters");
}

function* schemaTexts(
	node: unknown,
	path: string
): Generator<{ field: string; text: string; isTool: boolean }> {
	if (Array.isArray(node)) {
		for (let i = 0; i < node.length; i++) yield* schemaTexts(node[i], `${path}[${i}]`);
		return;
	}
	if (!node || typeof node !== "object") return;
	for (const [key, value] of Object.entries(node)) {
		if ((key === "description" || key === "title") && typeof value === "string")
			yield { field: `${path}.${key}`, text: value, isTool: false };
		else if (value && typeof value === "object") yield* schemaTexts(value, `${path}.${key}`);
	}
}

/** The findings of every rule on every text of a definition (empty when it is clean). */
export function checkDescriptions(
	definition: JsonObject,
	limits: DescriptionLimits = DEFAULT_DESCRIPTION_LIMITS
): ValidationWarning[] {
	const warnings: ValidationWarning[] = [];
	for (const { field, text, isTool } of modelTexts(definition)) {
		HIDDEN_CHARACTERS.lastIndex = 0;
		if (HIDDEN_CHARACTERS.test(text))
			warnings.push({
				field,
				rule: "hidden_characters",
				message: "contains invisible or bidirectional control characters"
			});
		// Rules read the text as a model would, after the hidden characters that could split a phrase.
		const visible = stripHidden(text);
		for (const { rule, message, pattern } of DESCRIPTION_RULES)
			if (pattern.test(visible)) warnings.push({ field, rule, message });
		const max = isTool ? limits.maxToolDescription : limits.maxParameterDescription;
		if (text.length > max)
			warnings.push({ field, rule: "long_text", message: `is longer than ${max} characters` });
	}
	return warnings;
}

/** `text` without the characters a reader cannot see. */
export function stripHidden(text: string): string {
	return text.replace(HIDDEN_CHARACTERS, "");
}

/**
 * `value` with hidden characters removed from every string, for exports handed to models. The
 * same object comes back when nothing had to change, so clean tools cost no copy.
 */
export function stripHiddenDeep<T>(value: T): T {
	if (typeof value === "string") {
		HIDDEN_CHARACTERS.lastIndex = 0;
		return (HIDDEN_CHARACTERS.test(value) ? stripHidden(value) : value) as T;
	}
	if (Array.isArray(value)) {
		let copy: unknown[] | null = null;
		value.forEach((item, i) => {
			const clean = stripHiddenDeep(item);
			if (clean !== item) (copy ??= [...value])[i] = clean;
		});
		return (copy ?? value) as T;
	}
	if (value && typeof value === "object") {
		let copy: Record<string, unknown> | null = null;
		for (const [key, item] of Object.entries(value)) {
			const clean = stripHiddenDeep(item);
			if (clean !== item) (copy ??= { ...(value as Record<string, unknown>) })[key] = clean;
		}
		return (copy ?? value) as T;
	}
	return value;
}
