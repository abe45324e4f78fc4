import { readdirSync, readFileSync, statSync } from "fs";
import path from "path";

/**
 * Arrows point down only: services → mixins → tools → lib → types. A layer may import its own
 * layer and those below it (mixins are parts of services, so they may run tools; a tool never
 * needs a service part). No service imports another service's file: services talk through
 * actions and events.
 */
const LAYERS: Record<string, number> = { types: 0, lib: 1, tools: 2, mixins: 3, services: 4 };

const root = path.join(__dirname, "../..");

function sourceFiles(dir: string): string[] {
	return readdirSync(dir).flatMap(name => {
		const file = path.join(dir, name);
		if (statSync(file).isDirectory()) return sourceFiles(file);
		return /\.tsx?$/.test(name) && !name.endsWith(".d.ts") ? [file] : [];
	});
}

/** Relative module specifiers of `import … from`, `export … from`, `import()` and `require()`. */
function relativeImports(source: string): string[] {
	const found: string[] = [];
	const pattern = /(?:\bfrom\s+|\bimport\s*\(\s*|\brequire\s*\(\s*|^\s*import\s+)["'](\.{1,2}\/[^"']+)["']/gm;
	for (let match; (match = pattern.exec(source));) found.push(match[1]);
	return found;
}

const layerOf = (file: string) => path.relative(root, file).split(path.sep)[0];

/** Every import that points up a layer or into another service. */
function violations(): string[] {
	const found: string[] = [];
	for (const layer of Object.keys(LAYERS))
		for (const file of sourceFiles(path.join(root, layer))) {
			for (const specifier of relativeImports(readFileSync(file, "utf8"))) {
				const target = path.resolve(path.dirname(file), specifier);
				const targetLayer = layerOf(target);
				if (!(targetLayer in LAYERS)) continue;
				const from = path.relative(root, file);
				const upward = LAYERS[targetLayer] > LAYERS[layer];
				const otherService = layer === "services" && targetLayer === "services";
				if (upward || otherService) found.push(`${from} imports ${specifier}`);
			}
		}
	return found;
}

describe("layering", () => {
	it("finds the imports of a file", () => {
		const source = [
			'import { a } from "../lib/a";',
			'import type { B } from "../types/b";',
			'export { c } from "./c";',
			'import "./side-effect";',
			'const d = require("../tools/d");',
			'const e = await import("../mixins/e");',
			'import ws from "ws";'
		].join("\n");
		expect(relativeImports(source)).toEqual([
			"../lib/a",
			"../types/b",
			"./c",
			"./side-effect",
			"../tools/d",
			"../mixins/e"
		]);
	});

	it("has no import pointing up a layer or into another service", () => {
		expect(violations()).toEqual([]);
	});
});
