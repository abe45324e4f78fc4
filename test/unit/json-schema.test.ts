import { DEFINITION_SCHEMA } from "../../lib/definition";
import { compileOwnSchema, createAjv, toProblems } from "../../lib/json-schema";

describe("createAjv", () => {
	it("compiles the draft 2020-12 meta-schema at once, so the first schema a request checks does not pay for it", () => {
		const ajv = createAjv();
		expect(ajv.schemas["https://json-schema.org/draft/2020-12/schema"]?.validate).toBeInstanceOf(Function);
	});
});

describe("compileOwnSchema", () => {
	it("reports what the RE2 instance reports for a definition, patterns included", () => {
		const definition = { name: "1bad name!", description: "d", type: "datetime", timeout_ms: 0 };
		const own = compileOwnSchema(DEFINITION_SCHEMA);
		const tenants = createAjv().compile(DEFINITION_SCHEMA);
		expect(own(definition)).toBe(false);
		expect(tenants(definition)).toBe(false);
		expect(toProblems(own.errors, "")).toEqual(toProblems(tenants.errors, ""));
		expect(toProblems(own.errors, "").map(problem => problem.field)).toEqual(["name", "timeout_ms"]);
	});
});
