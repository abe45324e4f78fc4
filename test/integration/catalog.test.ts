import type { Context } from "moleculer";
import { BACKENDS, dropPrefix, uniquePrefix } from "../support/backends";
import { http, startNode, type TestNode } from "../support/node";
import { calculatorTool, clockTool } from "../support/definitions";

let tenantCounter = 0;
const newTenant = () => `tenant-${process.pid}-${++tenantCounter}`;

const weather = (extra: Record<string, unknown> = {}) => ({
	name: "weather_lookup",
	description: "Current weather for a city",
	type: "external_api",
	parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
	config: {
		url: "https://api.example.com/weather",
		method: "GET",
		headers: { "X-Api-Key": "secret-header-value" },
		query: { token: "secret-query-token", units: "metric" }
	},
	metadata: { tags: ["weather"], category: "data" },
	permissions: { agents: ["*"] },
	timeout_ms: 5000,
	...extra
});

describe.each(BACKENDS)("catalog over HTTP on the $name store", ({ redisUrl }) => {
	let node: TestNode;
	const prefix = uniquePrefix();
	const call = (method: string, path: string, tenant: string, body?: unknown) =>
		http(node.url, method, `/api/v1${path}`, { tenant, body });

	beforeAll(async () => {
		// No executor: external_api probes are not run here (they would resolve api.example.com).
		node = await startNode({ redisUrl, redisPrefix: prefix, services: ["api", "registry", "validator"] });
	});

	afterAll(async () => {
		await node.stop();
		if (redisUrl) await dropPrefix(redisUrl, prefix);
	});

	describe("registration", () => {
		it("stores a tool with server-owned fields and answers 201", async () => {
			const tenant = newTenant();
			const res = await call("POST", "/tools", tenant, weather());
			expect(res.status).toBe(201);
			expect(res.body).toMatchObject({
				name: "weather_lookup",
				tenant_id: tenant,
				version: 1,
				// external_api tools wait for the probe of their API before they may run.
				status: "pending_validation",
				type: "external_api",
				permissions: { agents: ["*"] },
				validation: { valid: true, errors: [] }
			});
			expect(res.body.id).toMatch(/^[0-9a-f-]{36}$/);
			expect(Date.parse(res.body.created_at)).not.toBeNaN();
			expect(res.body.updated_at).toBe(res.body.created_at);
		});

		it("ignores server-owned fields sent in the body (no mass assignment)", async () => {
			const tenant = newTenant();
			const res = await call("POST", "/tools", tenant, {
				...weather(),
				id: "chosen-id",
				tenant_id: "someone-else",
				version: 42,
				status: "disabled",
				created_at: "2000-01-01T00:00:00Z",
				validation: { valid: true }
			});
			expect(res.status).toBe(201);
			expect(res.body.id).not.toBe("chosen-id");
			expect(res.body).toMatchObject({ tenant_id: tenant, version: 1, status: "pending_validation" });
			expect(res.body.created_at).not.toBe("2000-01-01T00:00:00Z");
			expect((await call("GET", "/tools/chosen-id", tenant)).status).toBe(404);
		});

		it("fills defaults: the type's parameters, all agents, 5000 ms", async () => {
			const res = await call("POST", "/tools", newTenant(), calculatorTool("calc"));
			expect(res.status).toBe(201);
			expect(res.body.parameters).toMatchObject({ type: "object", required: ["expression"] });
			expect(res.body).toMatchObject({ permissions: { agents: ["*"] }, timeout_ms: 5000 });
		});

		it("answers 409 for a name already used in the tenant, and allows it in another tenant", async () => {
			const tenant = newTenant();
			expect((await call("POST", "/tools", tenant, weather())).status).toBe(201);
			const clash = await call("POST", "/tools", tenant, weather());
			expect(clash.status).toBe(409);
			expect(clash.body).toMatchObject({ code: 409, type: "CONFLICT" });
			expect((await call("POST", "/tools", newTenant(), weather())).status).toBe(201);
		});

		it.each([
			["an invalid name", { name: "1bad name!" }, "name"],
			["a 65-character name", { name: `a${"b".repeat(64)}` }, "name"],
			["a 10,000-character name", { name: "n".repeat(10000) }, "name"],
			["a 10,000-character description", { description: "d".repeat(10000) }, "description"],
			["an unknown type", { type: "teleporter" }, "type"],
			[
				"an invalid JSON Schema",
				{ parameters: { type: "object", properties: { a: { type: "nope" } } } },
				"parameters"
			],
			["a non-object schema", { parameters: { type: "string" } }, "parameters.type"],
			[
				"a remote $ref",
				{ parameters: { type: "object", properties: { a: { $ref: "http://x/y.json" } } } },
				"parameters"
			],
			[
				"a pattern RE2 cannot run",
				{ parameters: { type: "object", properties: { a: { type: "string", pattern: "(?=a)" } } } },
				"parameters"
			],
			["an ftp url", { config: { url: "ftp://files.example.com/x" } }, "config.url"],
			["a url with credentials", { config: { url: "https://user:pw@example.com/x" } }, "config.url"],
			["a missing url", { config: { method: "GET" } }, "config.url"],
			["an unknown method", { config: { url: "https://example.com", method: "BREW" } }, "config.method"],
			["timeout_ms 0", { timeout_ms: 0 }, "timeout_ms"],
			["timeout_ms over 300000", { timeout_ms: 300001 }, "timeout_ms"],
			["permissions without agents", { permissions: { roles: ["x"] } }, "permissions"],
			["an unknown field", { paramters: {} }, "paramters"]
		])("answers 422 for %s and stores nothing", async (_case, change, field) => {
			const tenant = newTenant();
			const res = await call("POST", "/tools", tenant, weather(change));
			expect(res.status).toBe(422);
			expect(res.body).toMatchObject({ code: 422, type: "VALIDATION_ERROR" });
			expect(res.body.data.map((p: { field: string }) => p.field)).toEqual(
				expect.arrayContaining([expect.stringMatching(new RegExp(`^${field.replace(/[.$]/g, "\\$&")}`))])
			);
			const list = await call("GET", "/tools?type=external_api", tenant);
			expect(list.body.items).toEqual([]);
		});

		it("reports every problem of a definition at once", async () => {
			const res = await call("POST", "/tools", newTenant(), {
				name: "ok_name",
				type: "teleporter",
				parameters: { type: "object", properties: { a: { type: "nope" } } },
				timeout_ms: 999999
			});
			expect(res.status).toBe(422);
			const fields = res.body.data.map((p: { field: string }) => p.field);
			expect(fields).toEqual(expect.arrayContaining(["type", "timeout_ms"]));
		});

		it("answers the dry run with a report and stores nothing", async () => {
			const tenant = newTenant();
			const bad = await call(
				"POST",
				"/registry/validate",
				tenant,
				weather({ type: "teleporter", name: "9" })
			);
			expect(bad.status).toBe(200);
			expect(bad.body.valid).toBe(false);
			expect(bad.body.errors.map((p: { field: string }) => p.field).sort()).toEqual(["name", "type"]);
			const good = await call("POST", "/registry/validate", tenant, weather());
			expect(good.body).toEqual({ valid: true, errors: [] });
			expect((await call("GET", "/tools?type=external_api", tenant)).body.items).toEqual([]);
		});
	});

	describe("reads", () => {
		it("masks secrets in config on every read and keeps them on the server", async () => {
			const tenant = newTenant();
			const created = await call("POST", "/tools", tenant, weather());
			const masked = { "X-Api-Key": "********" };
			expect(created.body.config.headers).toEqual(masked);
			expect(created.body.config.query).toEqual({ token: "********", units: "metric" });
			const read = await call("GET", `/tools/${created.body.id}`, tenant);
			expect(read.body.config.headers).toEqual(masked);
			const listed = await call("GET", "/tools?type=external_api", tenant);
			expect(listed.body.items[0].config.headers).toEqual(masked);
			const stored = await node.broker.call<any, any>(
				"registry.resolve",
				{ tool_id: created.body.id },
				{ meta: { tenant_id: tenant } }
			);
			expect(stored.config.headers["X-Api-Key"]).toBe("secret-header-value");
		});

		it("keeps a stored secret when an update sends the mask back, and replaces it when sent anew", async () => {
			const tenant = newTenant();
			const created = await call("POST", "/tools", tenant, weather());
			const round = await call("PATCH", `/tools/${created.body.id}`, tenant, { config: created.body.config });
			expect(round.status).toBe(200);
			const resolve = () =>
				node.broker.call<any, any>(
					"registry.resolve",
					{ tool_id: created.body.id },
					{ meta: { tenant_id: tenant } }
				);
			expect((await resolve()).config.headers["X-Api-Key"]).toBe("secret-header-value");
			await call("PATCH", `/tools/${created.body.id}`, tenant, {
				config: { ...created.body.config, headers: { "X-Api-Key": "rotated" } }
			});
			expect((await resolve()).config.headers["X-Api-Key"]).toBe("rotated");
		});

		it("lists the tenant's tools and the global ones with type, tag and status filters", async () => {
			const tenant = newTenant();
			await call("POST", "/tools", tenant, weather());
			await call("POST", "/tools", tenant, {
				name: "clock",
				description: "Wall clock",
				type: "datetime",
				metadata: { tags: ["wall-clock"] }
			});
			const all = await call("GET", "/tools", tenant);
			const names = all.body.items.map((t: { name: string }) => t.name);
			expect(names).toEqual(expect.arrayContaining(["weather_lookup", "clock", "calculator", "datetime"]));
			expect(all.body.next_cursor).toBeNull();
			const byType = await call("GET", "/tools?type=external_api", tenant);
			expect(byType.body.items.map((t: { name: string }) => t.name)).toEqual(["weather_lookup"]);
			const byTag = await call("GET", "/tools?tag=wall-clock", tenant);
			expect(byTag.body.items.map((t: { name: string }) => t.name)).toEqual(["clock"]);
			expect((await call("GET", "/tools?status=disabled", tenant)).body.items).toEqual([]);
			expect((await call("GET", "/tools?status=sleeping", tenant)).status).toBe(422);
		});

		it("pages with an opaque cursor, clamping limit to 200", async () => {
			const tenant = newTenant();
			for (let i = 0; i < 5; i++) await call("POST", "/tools", tenant, calculatorTool(`t${i}`));
			const first = await call("GET", "/tools?type=calculator&limit=2", tenant);
			expect(first.body.items).toHaveLength(2);
			expect(typeof first.body.next_cursor).toBe("string");
			const names: string[] = first.body.items.map((t: { name: string }) => t.name);
			let cursor = first.body.next_cursor;
			while (cursor) {
				const page = await call("GET", `/tools?type=calculator&limit=2&cursor=${cursor}`, tenant);
				names.push(...page.body.items.map((t: { name: string }) => t.name));
				cursor = page.body.next_cursor;
			}
			expect(names).toEqual(["calculator", "t0", "t1", "t2", "t3", "t4"]);
			expect((await call("GET", "/tools?limit=5000", tenant)).status).toBe(200);
			expect((await call("GET", "/tools?cursor=not-a-cursor", tenant)).status).toBe(400);
			expect((await call("GET", "/tools?limit=0", tenant)).status).toBe(422);
		});

		it("has the built-in calculator and datetime as global tools", async () => {
			const res = await call("GET", "/tools", newTenant());
			const globals = res.body.items.filter((t: { tenant_id: string }) => t.tenant_id === "*");
			expect(globals.map((t: { name: string }) => t.name).sort()).toEqual(["calculator", "datetime"]);
			expect(globals.every((t: { status: string }) => t.status === "active")).toBe(true);
		});
	});

	describe("updates and deletes", () => {
		it("bumps the version on every update and serves earlier versions", async () => {
			const tenant = newTenant();
			const created = await call("POST", "/tools", tenant, weather());
			const updated = await call("PATCH", `/tools/${created.body.id}`, tenant, { description: "v2" });
			expect(updated.status).toBe(200);
			expect(updated.body).toMatchObject({ version: 2, description: "v2", name: "weather_lookup" });
			expect(Date.parse(updated.body.updated_at)).toBeGreaterThanOrEqual(Date.parse(created.body.updated_at));
			const v1 = await call("GET", `/tools/${created.body.id}?version=1`, tenant);
			expect(v1.body).toMatchObject({ version: 1, description: "Current weather for a city" });
			expect((await call("GET", `/tools/${created.body.id}?version=9`, tenant)).status).toBe(404);
		});

		it("lists a tool's versions newest first and rolls back to one as a new version", async () => {
			const tenant = newTenant();
			const created = await call("POST", "/tools", tenant, weather());
			const id = created.body.id;
			await call("PATCH", `/tools/${id}`, tenant, { description: "v2" });
			const v3 = await call("PATCH", `/tools/${id}`, tenant, {
				description: "v3",
				config: { headers: { "X-Api-Key": "rotated-in-v3" } }
			});
			const versions = await call("GET", `/tools/${id}/versions`, tenant);
			expect(versions.status).toBe(200);
			expect(versions.body.items).toEqual([
				{ version: 3, definition_hash: v3.body.definition_hash, updated_at: v3.body.updated_at },
				expect.objectContaining({ version: 2 }),
				{ version: 1, definition_hash: created.body.definition_hash, updated_at: created.body.updated_at }
			]);

			const rolled = await call("POST", `/tools/${id}/rollback`, tenant, { version: 1 });
			expect(rolled.status).toBe(200);
			expect(rolled.body).toMatchObject({
				version: 4,
				description: "Current weather for a city",
				definition_hash: created.body.definition_hash
			});
			// The secret of version 1 comes back with it.
			const stored = await node.broker.call<any, any>(
				"registry.resolve",
				{ tool_id: id },
				{ meta: { tenant_id: tenant } }
			);
			expect(stored.config.headers["X-Api-Key"]).toBe("secret-header-value");
			expect((await call("POST", `/tools/${id}/rollback`, tenant, { version: 9 })).status).toBe(404);
			expect((await call("POST", `/tools/${id}/rollback`, tenant, { version: "one" })).status).toBe(422);
			expect((await call("GET", `/tools/${id}/versions`, newTenant())).status).toBe(404);
		});

		it("merges config and metadata as JSON Merge Patch: other keys stay, null removes one", async () => {
			const tenant = newTenant();
			const created = await call("POST", "/tools", tenant, weather());
			const res = await call("PATCH", `/tools/${created.body.id}`, tenant, {
				config: { query: { units: "imperial", token: null }, headers: { "X-Trace": "on" } },
				metadata: { category: null, tags: ["weather", "forecast"] }
			});
			expect(res.status).toBe(200);
			expect(res.body.config).toEqual({
				url: "https://api.example.com/weather",
				method: "GET",
				headers: { "X-Api-Key": "********", "X-Trace": "********" },
				query: { units: "imperial" }
			});
			expect(res.body.metadata).toEqual({ tags: ["weather", "forecast"] });
			const stored = await node.broker.call<any, any>(
				"registry.resolve",
				{ tool_id: created.body.id },
				{ meta: { tenant_id: tenant } }
			);
			expect(stored.config.headers).toEqual({ "X-Api-Key": "secret-header-value", "X-Trace": "on" });
		});

		it("refuses a missing or empty description: agents choose tools by it", async () => {
			const tenant = newTenant();
			const { description: _omitted, ...undescribed } = weather();
			const missing = await call("POST", "/tools", tenant, undescribed);
			expect(missing.status).toBe(422);
			expect(missing.body).toMatchObject({ type: "VALIDATION_ERROR" });
			expect(missing.body.data).toEqual([
				{ field: "description", message: "must have required property 'description'" }
			]);
			const blank = await call("POST", "/tools", tenant, weather({ description: "  " }));
			expect(blank.status).toBe(422);
			expect(blank.body.data).toEqual([{ field: "description", message: expect.stringContaining("empty") }]);
			const created = await call("POST", "/tools", tenant, weather());
			const patched = await call("PATCH", `/tools/${created.body.id}`, tenant, { description: "" });
			expect(patched.status).toBe(422);
			const removed = await call("PATCH", `/tools/${created.body.id}`, tenant, { description: null });
			expect(removed.status).toBe(422);
			expect(removed.body.data).toEqual([{ field: "description", message: expect.any(String) }]);
		});

		it("lets a tool stored before descriptions were required be changed and revalidated without one", async () => {
			const tenant = newTenant();
			const { body } = await call("POST", "/tools", tenant, calculatorTool("legacy"));
			const registry = node.broker.getLocalService("registry") as unknown as {
				store: { update(id: string, change: (tool: object) => object): Promise<unknown> };
			};
			await registry.store.update(body.id, tool => ({ ...tool, description: "" }));
			const patched = await call("PATCH", `/tools/${body.id}`, tenant, { timeout_ms: 1000 });
			expect(patched).toMatchObject({ status: 200, body: { description: "", timeout_ms: 1000 } });
			const revalidated = await call("POST", `/tools/${body.id}/validate`, tenant);
			expect(revalidated).toMatchObject({ status: 200, body: { valid: true } });
		});

		it("answers 409 for a stale expected_version and applies a current one", async () => {
			const tenant = newTenant();
			const { body } = await call("POST", "/tools", tenant, weather());
			await call("PATCH", `/tools/${body.id}`, tenant, { description: "v2" });
			const stale = await call("PATCH", `/tools/${body.id}`, tenant, {
				description: "v3",
				expected_version: 1
			});
			expect(stale.status).toBe(409);
			expect(stale.body).toMatchObject({ type: "CONFLICT", data: { current_version: 2 } });
			const fresh = await call("PATCH", `/tools/${body.id}`, tenant, {
				description: "v3",
				expected_version: 2
			});
			expect(fresh.body.version).toBe(3);
		});

		it("answers 409 when renaming onto a taken name and 422 for an invalid change", async () => {
			const tenant = newTenant();
			const a = await call("POST", "/tools", tenant, calculatorTool("a"));
			await call("POST", "/tools", tenant, calculatorTool("b"));
			expect((await call("PATCH", `/tools/${a.body.id}`, tenant, { name: "b" })).status).toBe(409);
			expect((await call("PATCH", `/tools/${a.body.id}`, tenant, { timeout_ms: -1 })).status).toBe(422);
			expect((await call("GET", `/tools/${a.body.id}`, tenant)).body.version).toBe(1);
		});

		it("ignores server-owned fields in an update", async () => {
			const tenant = newTenant();
			const { body } = await call("POST", "/tools", tenant, weather());
			const res = await call("PATCH", `/tools/${body.id}`, tenant, {
				...body,
				tenant_id: "other",
				version: 99,
				status: "disabled",
				description: "changed"
			});
			expect(res.status).toBe(200);
			expect(res.body).toMatchObject({ tenant_id: tenant, version: 2, description: "changed" });
			expect(res.body.status).not.toBe("disabled");
		});

		it("deletes with 204, then answers 404", async () => {
			const tenant = newTenant();
			const { body } = await call("POST", "/tools", tenant, weather());
			const removed = await call("DELETE", `/tools/${body.id}`, tenant);
			expect(removed.status).toBe(204);
			expect(removed.body).toBeNull();
			expect((await call("GET", `/tools/${body.id}`, tenant)).status).toBe(404);
			expect((await call("DELETE", `/tools/${body.id}`, tenant)).status).toBe(404);
			expect((await call("POST", "/tools", tenant, weather())).status).toBe(201);
		});

		it("re-runs definition validation on demand, answering the report", async () => {
			const tenant = newTenant();
			const { body } = await call("POST", "/tools", tenant, clockTool("clock"));
			const report = await call("POST", `/tools/${body.id}/validate`, tenant);
			expect(report.status).toBe(200);
			expect(report.body).toMatchObject({ valid: true, errors: [], kind: "definition" });
		});
	});

	describe("tenancy", () => {
		it("reports another tenant's tool as 404 on every route", async () => {
			const owner = newTenant();
			const intruder = newTenant();
			const { body } = await call("POST", "/tools", owner, weather());
			for (const [method, path, payload] of [
				["GET", `/tools/${body.id}`],
				["PATCH", `/tools/${body.id}`, { description: "x" }],
				["DELETE", `/tools/${body.id}`],
				["POST", `/tools/${body.id}/validate`]
			] as const) {
				const res = await call(method, path, intruder, payload);
				expect(res.status).toBe(404);
				expect(res.body.type).toBe("NOT_FOUND");
			}
			const list = await call("GET", "/tools?type=external_api", intruder);
			expect(list.body.items).toEqual([]);
			expect((await call("GET", `/tools/${body.id}`, owner)).body.description).toBe(
				"Current weather for a city"
			);
		});

		it("lets the service token manage global tools that tenants can read but never write", async () => {
			const name = `global_${process.pid}_${++tenantCounter}`;
			const created = await call("POST", "/tools", "*", clockTool(name));
			expect(created.status).toBe(201);
			expect(created.body.tenant_id).toBe("*");
			const tenant = newTenant();
			expect((await call("GET", `/tools/${created.body.id}`, tenant)).status).toBe(200);
			const write = await call("PATCH", `/tools/${created.body.id}`, tenant, { description: "mine" });
			expect(write.status).toBe(403);
			expect(write.body.type).toBe("FORBIDDEN");
			expect((await call("DELETE", `/tools/${created.body.id}`, tenant)).status).toBe(403);
			expect((await call("PATCH", `/tools/${created.body.id}`, "*", { description: "ok" })).status).toBe(200);
			expect((await call("DELETE", `/tools/${created.body.id}`, "*")).status).toBe(204);
		});
	});

	describe("Moleculer actions", () => {
		it("serves registry actions with identity in ctx.meta and emits tool events", async () => {
			const tenant = newTenant();
			const events: string[] = [];
			const listener = node.broker.createService({
				name: `listener-${tenantCounter}`,
				events: {
					"tool.*"(ctx: Context<{ tenant_id: string }>) {
						if (ctx.params.tenant_id === tenant) events.push(ctx.eventName!);
					}
				}
			});
			const meta = { meta: { tenant_id: tenant } };
			const tool = await node.broker.call<any, any>("registry.register", calculatorTool("x"), meta);
			await node.broker.call("registry.update", { id: tool.id, description: "y" }, meta);
			expect(await node.broker.call("registry.get", { id: tool.id }, meta)).toMatchObject({ version: 2 });
			await node.broker.call("registry.remove", { id: tool.id }, meta);
			await expect(node.broker.call("registry.get", { id: tool.id }, meta)).rejects.toMatchObject({
				code: 404
			});
			await expect(node.broker.call("registry.list", {}, { meta: {} })).rejects.toMatchObject({
				code: 400,
				type: "TENANT_REQUIRED"
			});
			await node.broker.destroyService(listener);
			expect(events).toEqual(["tool.registered", "tool.updated", "tool.deleted"]);
		});
	});
});
