import { jsonRefusal } from "../../lib/json-guard";

const refusal = (text: string) => jsonRefusal(Buffer.from(text));

describe("jsonRefusal", () => {
	it.each([
		'{"__proto__": {"polluted": true}}',
		'{"a": {"b": [{"__proto__" : 1}]}}',
		'{"\\u005f_proto__": {}}',
		'{"__pro\\u0074o__"\n:\t{}}'
	])("refuses the key __proto__ in %s", text => {
		expect(refusal(text)).toBe('JSON key "__proto__" is not allowed');
	});

	it.each([
		'{"name": "__proto__"}',
		'{"tags": ["__proto__", "x"]}',
		'{"__proto": 1, "__proto___": 2, "constructor": {"prototype": 3}}',
		'{"s": "a \\" quote, then \\"__proto__\\": in a string"}',
		'{"x": "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["}'
	])("accepts %s", text => {
		expect(refusal(text)).toBeNull();
	});

	it("refuses nesting past 64 levels and accepts 64", () => {
		expect(refusal(`${"[".repeat(64)}${"]".repeat(64)}`)).toBeNull();
		expect(refusal(`${"[".repeat(65)}${"]".repeat(65)}`)).toBe("JSON is nested deeper than 64 levels");
		expect(refusal(`{"a":${'{"b":'.repeat(70)}1${"}".repeat(71)}`)).toBe(
			"JSON is nested deeper than 64 levels"
		);
	});

	it("reads a 1 MiB body in a few milliseconds", () => {
		const body = Buffer.from(
			JSON.stringify({ rows: Array.from({ length: 40_000 }, (_, i) => ({ id: i, s: "x" })) })
		);
		jsonRefusal(body);
		const started = performance.now();
		expect(jsonRefusal(body)).toBeNull();
		expect(performance.now() - started).toBeLessThan(50);
	});
});
