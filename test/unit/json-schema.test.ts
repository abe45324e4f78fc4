import { createAjv } from "../../lib/json-schema";

describe("createAjv", () => {
	it("compiles the draft 2020-12 meta-schema at once, so the first schema a request checks does not pay for it", () => {
		const ajv = createAjv();
		expect(ajv.schemas["https://json-schema.org/draft/2020-12/schema"]?.validate).toBeInstanceOf(Function);
	});
});
