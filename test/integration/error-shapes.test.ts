import { http, SERVICE_TOKEN, startNode, type TestNode } from "../support/node";

/** What a client gets back for a request it got wrong: one shape, and the reason it is wrong. */
describe("errors a client can act on", () => {
	let node: TestNode;
	const tenant = "errors-acme";
	const headers = { authorization: `Bearer ${SERVICE_TOKEN}`, "x-tenant-id": tenant };

	beforeAll(async () => {
		node = await startNode({ services: ["api", "keys", "registry", "validator", "executor"] });
	});
	afterAll(() => node.stop());

	it("answers a body that is not JSON with 415, not with missing fields", async () => {
		for (const contentType of [undefined, "text/plain", "application/x-www-form-urlencoded"]) {
			const res = await fetch(`${node.url}/api/v1/tools`, {
				method: "POST",
				headers: contentType ? { ...headers, "content-type": contentType } : headers,
				body: JSON.stringify({ name: "clock", description: "Wall clock", type: "datetime" })
			});
			expect([contentType, res.status]).toEqual([contentType, 415]);
			expect(await res.json()).toMatchObject({ code: 415, type: "UNSUPPORTED_MEDIA_TYPE" });
		}
		// JSON media types with parameters or a +json suffix are JSON.
		for (const contentType of ["application/json; charset=utf-8", "application/merge-patch+json"]) {
			const res = await fetch(`${node.url}/api/v1/registry/validate`, {
				method: "POST",
				headers: { ...headers, "content-type": contentType },
				body: JSON.stringify({ name: "clock", description: "Wall clock", type: "datetime" })
			});
			expect([contentType, res.status]).toEqual([contentType, 200]);
		}
		// No body needs no Content-Type.
		const created = await http(node.url, "POST", "/api/v1/tools", {
			tenant,
			body: { name: "clock", description: "Wall clock", type: "datetime" }
		});
		const validate = await fetch(`${node.url}/api/v1/tools/${created.body.id}/validate`, {
			method: "POST",
			headers
		});
		expect(validate.status).toBe(200);
	});

	it("answers a known path asked with another method with 405 and Allow", async () => {
		for (const [method, path, allow] of [
			["PUT", "/api/v1/tools", "GET, POST"],
			["DELETE", "/api/v1/registry/discover", "POST"],
			["POST", "/api/v1/tools/01a22a29-1ce4-7049-98d8-decb50e9947c", "DELETE, GET, PATCH"],
			["GET", "/api/v1/internal/execute", "POST"]
		]) {
			const res = await http(node.url, method, path, { tenant });
			expect([method, path, res.status]).toEqual([method, path, 405]);
			expect(res.headers.get("allow")).toBe(allow);
			expect(res.body).toMatchObject({ code: 405, type: "METHOD_NOT_ALLOWED" });
		}
		expect((await http(node.url, "PUT", "/api/v1/nowhere", { tenant })).status).toBe(404);
	});

	it("reports action parameter problems as one {field, message} per field, naming allowed values", async () => {
		const status = await http(node.url, "GET", "/api/v1/tools?status=sleeping&limit=zero", { tenant });
		expect(status.status).toBe(422);
		expect(status.body).toEqual({
			name: expect.any(String),
			message: expect.any(String),
			code: 422,
			type: "VALIDATION_ERROR",
			data: [
				{ field: "status", message: "must be one of: pending_validation, active, invalid, disabled" },
				{ field: "limit", message: expect.stringContaining("number") }
			]
		});
		const key = await http(node.url, "POST", "/api/v1/keys", {
			tenant,
			body: { tenant_id: tenant, scopes: ["tools:fly"] }
		});
		expect(key.status).toBe(422);
		expect(key.body.data).toEqual([
			{
				field: "scopes[0]",
				message: "must be one of: tools:read, tools:write, tools:execute, keys:admin"
			}
		]);
		for (const problem of [...status.body.data, ...key.body.data])
			expect(Object.keys(problem).sort()).toEqual(["field", "message"]);
	});

	it("keeps every problem of a tool definition, several on one field included", async () => {
		const res = await http(node.url, "POST", "/api/v1/tools", {
			tenant,
			body: { name: "1 bad", description: " ", type: "teleport", timeout_ms: 0 }
		});
		expect(res.status).toBe(422);
		const fields = (res.body.data as { field: string }[]).map(p => p.field);
		expect(fields).toEqual(expect.arrayContaining(["name", "description", "type", "timeout_ms"]));
		expect(res.body.data.find((p: { field: string }) => p.field === "type").message).toMatch(
			/must be one of: .*calculator/
		);
	});
});
