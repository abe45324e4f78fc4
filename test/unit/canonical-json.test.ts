import canonicalize from "canonicalize";
import { canonicalJson, constantJson } from "../../lib/canonical-json";
import { toolFor } from "../../tools";

describe("canonicalJson", () => {
	const shared = constantJson({ type: "object", properties: { b: { enum: [2, 1] }, a: { type: "string" } } });

	it.each([
		["no members", {}],
		["keys out of order", { z: 1, a: "x", m: null }],
		["undefined members left out", { name: "n", output_schema: undefined, annotations: undefined }],
		["nested values and numbers", { b: [{ y: 1e21, x: 0.1 }], a: { é: true, "\u0001": "\n" } }],
		["a constant member", { parameters: shared, name: "t", config: {} }],
		["a constant nested below a member", { wrap: { parameters: shared } }]
	])("reads like canonicalize with %s", (_case, record) => {
		expect(canonicalJson(record)).toBe(canonicalize(record));
	});

	it("freezes a constant to its leaves, so its remembered text cannot go stale", () => {
		expect(() => (shared.properties.b.enum as number[]).push(3)).toThrow(TypeError);
		expect(canonicalJson({ parameters: shared })).toBe(canonicalize({ parameters: shared }));
	});

	it("treats every tool type's default parameters as constants", () => {
		expect(Object.isFrozen(toolFor("datetime")!.parameters)).toBe(true);
	});
});
