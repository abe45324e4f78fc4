/**
 * `node:fs` plus the `globSync` that Node 22 added. The MCP conformance suite imports `globSync` by
 * name; on Node 20 the hooks in `node20.mjs` hand it this module instead of `fs`. Walks `cwd` and
 * keeps the relative paths `path.matchesGlob` accepts: enough for the suite's result-file lookups.
 */
import fs from "node:fs";
import path from "node:path";

export * from "node:fs";
export default fs;

export function globSync(pattern, options = {}) {
	const cwd = options.cwd ? String(options.cwd) : process.cwd();
	const patterns = Array.isArray(pattern) ? pattern : [pattern];
	const found = [];
	const walk = relative => {
		for (const entry of fs.readdirSync(path.join(cwd, relative), { withFileTypes: true })) {
			const child = relative ? path.join(relative, entry.name) : entry.name;
			if (patterns.some(p => path.matchesGlob(child, p))) found.push(child);
			if (entry.isDirectory()) walk(child);
		}
	};
	walk("");
	return found;
}
