import { createHash } from "crypto";

/** Names of sources: they prefix their tools' names, which are at most 64 characters. */
export const SOURCE_NAME_PATTERN = "^[a-zA-Z][a-zA-Z0-9_-]{0,31}$";

const MAX_TOOL_NAME = 64;

/**
 * `{source}__{remote}` as a valid tool name: characters a tool name cannot hold become `_`, and a
 * name too long is cut and given a short hash of the whole, so two long remote names stay apart.
 */
export function sourceToolName(sourceName: string, remoteName: string): string {
	const name = `${sourceName}__${remoteName.replace(/[^a-zA-Z0-9_-]+/g, "_").replace(/^_+|_+$/g, "")}`;
	if (name.length <= MAX_TOOL_NAME) return name;
	const digest = createHash("sha256").update(remoteName).digest("hex").slice(0, 8);
	return `${name.slice(0, MAX_TOOL_NAME - digest.length - 1)}_${digest}`;
}

/** The same names with every repeat given a distinct suffix, keeping the first as it is. */
export function distinctNames(names: string[]): string[] {
	const seen = new Set<string>();
	return names.map(name => {
		let candidate = name;
		for (let n = 2; seen.has(candidate); n++)
			candidate = `${name.slice(0, MAX_TOOL_NAME - String(n).length - 1)}_${n}`;
		seen.add(candidate);
		return candidate;
	});
}
