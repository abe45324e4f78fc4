import { readdirSync, readFileSync, statSync } from "fs";
import path from "path";

const root = path.join(__dirname, "../..");
const development = readFileSync(path.join(root, "docs/development.md"), "utf8");
/** The code block under `## Layout`. */
const layout = /## Layout\s+```\n([\s\S]*?)```/.exec(development)?.[1] ?? "";

const entries = (dir: string) => readdirSync(path.join(root, dir));
const folders = (dir: string) =>
	entries(dir).filter(name => statSync(path.join(root, dir, name)).isDirectory());
const namesOf = (dir: string, suffix: string) =>
	entries(dir)
		.filter(name => name.endsWith(suffix))
		.map(name => name.slice(0, -suffix.length));
/** The lines of the layout block from `label` up to the next top-level folder. */
const section = (label: string) => {
	const start = layout.indexOf(`\n${label}`);
	const rest = layout.slice(start + 1);
	const next = rest.slice(1).search(/\n[a-z]+\/ /);
	return next < 0 ? rest : rest.slice(0, next + 1);
};
const mentions = (text: string, name: string) => new RegExp(`(^|[^\\w-])${name}([^\\w-]|$)`).test(text);

describe("docs/development.md's layout", () => {
	it("has a layout block", () => {
		expect(layout.length).toBeGreaterThan(0);
	});

	it("names every top-level source folder", () => {
		const expected = ["services", "mixins", "tools", "lib", "types", "scripts", "ui", "test", "bench"];
		expect(expected.filter(folder => !layout.includes(`${folder}/`))).toEqual([]);
	});

	it("names every service, mixin and script", () => {
		const missing = [
			...namesOf("services", ".service.ts").filter(name => !mentions(section("services/"), name)),
			...namesOf("mixins", ".mixin.ts").filter(name => !mentions(section("mixins/"), name)),
			...namesOf("scripts", ".ts").filter(name => !mentions(section("scripts/"), name))
		];
		expect(missing).toEqual([]);
	});

	it("names every folder of lib/ and nothing that is not there", () => {
		const listed = [...section("lib/").matchAll(/^ {2}([a-z-]+)\/ /gm)].map(match => match[1]).sort();
		expect(listed).toEqual(folders("lib").sort());
	});
});
