import { paramsToJsonSchema } from "../../lib/params-schema";

describe("paramsToJsonSchema", () => {
	it("maps common rules and marks non-optional keys required", () => {
		expect(
			paramsToJsonSchema({
				$$strict: true,
				name: "string|min:2|max:10",
				age: { type: "number", integer: true, min: 0, optional: true },
				email: "email",
				role: { type: "enum", values: ["a", "b"], default: "a" },
				tags: { type: "array", items: "string", max: 5 },
				address: { type: "object", props: { city: "string", zip: "string|optional" } },
				anything: "any",
				flag: "boolean|optional"
			})
		).toEqual({
			type: "object",
			properties: {
				name: { type: "string", minLength: 2, maxLength: 10 },
				age: { type: "integer", minimum: 0 },
				email: { type: "string", format: "email" },
				role: { enum: ["a", "b"], default: "a" },
				tags: { type: "array", items: { type: "string" }, maxItems: 5 },
				address: {
					type: "object",
					properties: { city: { type: "string" }, zip: { type: "string" } },
					required: ["city"]
				},
				anything: {},
				flag: { type: "boolean" }
			},
			required: ["name", "email", "tags", "address", "anything"]
		});
	});

	it("answers an empty object schema for actions without params", () => {
		expect(paramsToJsonSchema(undefined)).toEqual({ type: "object", properties: {} });
	});

	it("turns several alternative rules into anyOf", () => {
		expect(paramsToJsonSchema({ id: ["string", "number"] }).properties).toEqual({
			id: { anyOf: [{ type: "string" }, { type: "number" }] }
		});
	});
});
