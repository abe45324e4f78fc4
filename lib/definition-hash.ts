import { hash } from "crypto";
import { canonicalJson } from "./canonical-json";
import type { StoredTool } from "../types/wire";
import { maskSecrets } from "./secrets";

/**
 * SHA-256 of the canonical JSON (RFC 8785) of what an agent approves: name, description,
 * parameters, config with secrets masked, and the output schema and annotations when the tool
 * has them (absent, they leave the hash as it was without them). Anyone can recompute it from a read.
 */
export function definitionHash(
	tool: Pick<StoredTool, "name" | "description" | "parameters" | "config" | "output_schema" | "annotations">
): string {
	const canonical = canonicalJson({
		name: tool.name,
		description: tool.description,
		parameters: tool.parameters,
		config: maskSecrets(tool.config),
		output_schema: tool.output_schema,
		annotations: tool.annotations
	});
	return `sha256:${hash("sha256", canonical)}`;
}
