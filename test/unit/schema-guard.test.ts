import { createAjv } from "../../lib/json-schema";
import { DEFAULT_SCHEMA_GUARD, SchemaGuard } from "../../lib/schema-guard";

describe("the schema guard of a stopped service", () => {
	it("starts no thread again: work that would go to one is refused as the node stopping", async () => {
		// Every schema costs more than inline work may: all of it would run on a thread.
		const guard = new SchemaGuard(createAjv(), { ...DEFAULT_SCHEMA_GUARD, inlineCompileCost: 0 });
		await guard.close();
		await expect(guard.check({ type: "object" })).rejects.toMatchObject({
			code: 503,
			type: "SERVICE_UNAVAILABLE"
		});
	});
});
