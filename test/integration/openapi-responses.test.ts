import type { ValidateFunction } from "ajv/dist/2020";
import { API_ROUTES } from "../../lib/api-routes";
import { createAjv } from "../../lib/json-schema";
import { eventually } from "../support/eventually";
import { http, startNode, type HttpResult, type TestNode } from "../support/node";
import { clockTool } from "../support/definitions";

/**
 * Every REST route's real answers, checked against the schemas `/openapi.json` publishes. The
 * published schemas are read strictly here: an object may carry only the properties it documents,
 * so a response that gains a field, or loses a required one, fails this suite.
 */

type Json = Record<string, any>;
const TENANT = "oas";

/** `additionalProperties: false` on every object schema that lists its properties and says nothing else. */
function strict(schema: unknown): unknown {
	if (Array.isArray(schema)) return schema.map(strict);
	if (!schema || typeof schema !== "object") return schema;
	const copy: Json = Object.fromEntries(Object.entries(schema).map(([key, value]) => [key, strict(value)]));
	if (copy.properties && copy.additionalProperties === undefined && !copy.patternProperties)
		copy.additionalProperties = false;
	return copy;
}

const toOpenApiPath = (path: string) => path.replace(/:([A-Za-z_]+)/g, "{$1}");

/** A small OpenAPI document a source imports its tools from (inline, so no upstream is needed). */
const SOURCE_SPEC = {
	openapi: "3.1.0",
	info: { title: "Stand-in", version: "1" },
	servers: [{ url: "http://127.0.0.1:9" }],
	paths: {
		"/pets": {
			get: {
				operationId: "listPets",
				summary: "List the pets",
				responses: { "200": { description: "The pets" } }
			}
		}
	}
};

describe("REST responses against the published OpenAPI schemas", () => {
	let node: TestNode;
	/** A node without an executor: its tasks stay pending, so one can be cancelled. */
	let queueOnly: TestNode;
	let document: Json;
	const validators = new Map<string, ValidateFunction>();
	/** `METHOD /path` of every route this suite saw answer successfully. */
	const covered = new Set<string>();

	/** The validator of a documented answer; throws when the status is not documented at all. */
	function validatorFor(method: string, route: string, status: number): ValidateFunction | null {
		const operation = document.paths[toOpenApiPath(route)]?.[method.toLowerCase()];
		if (!operation) throw new Error(`${method} ${route} is not documented`);
		const answer = operation.responses[String(status)];
		if (!answer) throw new Error(`${method} ${route} answered ${status}, which is not documented`);
		const schema = answer.content?.["application/json"]?.schema;
		if (!schema) return null;
		const key = `${method} ${route} ${status}`;
		let validate = validators.get(key);
		if (!validate) {
			// `#/components/...` references resolve within the compiled schema, which carries the components.
			validate = createAjv().compile({
				...(strict(schema) as Json),
				components: strict(document.components)
			});
			validators.set(key, validate);
		}
		return validate;
	}

	/** Calls a route and checks its answer against the document; resolves the answer. */
	async function call(
		method: string,
		route: string,
		path: string,
		options: Parameters<typeof http>[3] & { on?: TestNode } = {}
	): Promise<HttpResult> {
		const res = await http((options.on ?? node).url, method, path, { tenant: TENANT, ...options });
		const validate = validatorFor(method, route, res.status);
		if (res.status === 204) expect(res.body).toBeNull();
		else if (validate && !validate(res.body))
			throw new Error(
				`${method} ${path} → ${res.status} does not match its schema: ${JSON.stringify(validate.errors, null, 1)}\n` +
					JSON.stringify(res.body, null, 1)
			);
		if (res.status < 300) covered.add(`${method} ${route}`);
		return res;
	}

	beforeAll(async () => {
		node = await startNode();
		queueOnly = await startNode({ services: ["api", "keys", "registry", "validator"] });
		document = (await http(node.url, "GET", "/openapi.json", { token: null })).body;
	});

	afterAll(async () => {
		await node.stop();
		await queueOnly.stop();
	});

	it("documents a schema for every success answer of every /api/v1 route", () => {
		const missing = Object.entries(API_ROUTES)
			.filter(([, alias]) => alias.status !== 204)
			.filter(([route, alias]) => {
				const [method, path] = route.split(" ");
				const answer = document.paths[toOpenApiPath(`/api/v1${path}`)][method.toLowerCase()].responses;
				return !answer[String(alias.status ?? 200)].content["application/json"].schema.$ref;
			})
			.map(([route]) => route);
		expect(missing).toEqual([]);
	});

	it("answers health and readiness as documented", async () => {
		await call("GET", "/health", "/health", { token: null });
		await call("GET", "/health/ready", "/health/ready", { token: null });
	});

	it("answers the tool routes as documented", async () => {
		const definition = {
			name: "oas_clock",
			description: "The time in a time zone",
			type: "datetime",
			metadata: { tags: ["time"] }
		};
		await call("POST", "/api/v1/registry/validate", "/api/v1/registry/validate", { body: definition });
		const created = await call("POST", "/api/v1/tools", "/api/v1/tools", { body: definition });
		expect(created.status).toBe(201);
		const id = created.body.id as string;
		const tool = `/api/v1/tools/${id}`;
		await eventually(async () => {
			const read = await call("GET", "/api/v1/tools/:id", tool);
			expect(read.body.status).toBe("active");
		});
		await call("GET", "/api/v1/tools", "/api/v1/tools");
		await call("GET", "/api/v1/tools", "/api/v1/tools?limit=1");
		await call("PATCH", "/api/v1/tools/:id", tool, { body: { metadata: { tags: ["clock"] } } });
		await call("GET", "/api/v1/tools/:id", `${tool}?version=1`);
		await call("GET", "/api/v1/tools/:id/versions", `${tool}/versions`);
		await call("POST", "/api/v1/tools/:id/rollback", `${tool}/rollback`, { body: { version: 1 } });
		await call("POST", "/api/v1/tools/:id/validate", `${tool}/validate`, { body: {} });
		await call("PUT", "/api/v1/tools/:id/status", `${tool}/status`, { body: { status: "disabled" } });
		await call("PUT", "/api/v1/tools/:id/status", `${tool}/status`, { body: { status: "active" } });
		await call("GET", "/api/v1/tools/:id/stats", `${tool}/stats`);
		await call("DELETE", "/api/v1/tools/:id", tool);
	});

	it("answers discovery in every format and view as documented", async () => {
		const route = "/api/v1/registry/discover";
		for (const format of ["native", "openai", "anthropic", "mcp"])
			await call("POST", route, route, { body: { query: "calculate an expression", format } });
		await call("POST", route, route, { body: { query: "time zone", view: "summary" } });
		await call("POST", route, route, { body: {} });
	});

	it("answers execution and tasks as documented", async () => {
		const parameters = { expression: "6 * 7" };
		await call("POST", "/api/v1/internal/execute", "/api/v1/internal/execute", {
			body: { tool_name: "calculator", parameters }
		});
		await call("POST", "/api/v1/internal/execute", "/api/v1/internal/execute", {
			body: { tool_name: "datetime", parameters: { operation: "now", timezone: "Nowhere/Atlantis" } }
		});
		const task = { type: "tool_execution", payload: { tool_name: "calculator", parameters } };
		const submitted = await call("POST", "/api/v1/internal/tasks", "/api/v1/internal/tasks", {
			body: { ...task, callback_url: "https://orchestrator.example/cb" }
		});
		const status = "/api/v1/internal/tasks/:task_id";
		await eventually(async () => {
			const read = await call("GET", status, `/api/v1/internal/tasks/${submitted.body.task_id}`);
			expect(read.body.status).toBe("completed");
		});
		const failing = await call("POST", "/api/v1/internal/tasks", "/api/v1/internal/tasks", {
			body: {
				type: "tool_execution",
				payload: { tool_name: "datetime", parameters: { operation: "now", timezone: "Nowhere/Atlantis" } }
			}
		});
		await eventually(async () => {
			const read = await call("GET", status, `/api/v1/internal/tasks/${failing.body.task_id}`);
			expect(read.body.status).toBe("failed");
		});
		const pending = await call("POST", "/api/v1/internal/tasks", "/api/v1/internal/tasks", {
			body: task,
			on: queueOnly
		});
		await call("DELETE", status, `/api/v1/internal/tasks/${pending.body.task_id}`, { on: queueOnly });
	});

	it("answers the key, source and audit routes as documented", async () => {
		const created = await call("POST", "/api/v1/keys", "/api/v1/keys", {
			body: { tenant_id: TENANT, scopes: ["tools:read"], name: "reader", agent_id: "bot" }
		});
		const key = created.body.api_key as string;
		await call("GET", "/api/v1/tools", "/api/v1/tools", { token: key, tenant: undefined });
		await eventually(async () => {
			const keys = await call("GET", "/api/v1/keys", "/api/v1/keys");
			expect(keys.body.items[0].last_used_at).not.toBeNull();
		});
		await call("DELETE", "/api/v1/keys/:key_id", `/api/v1/keys/${created.body.key_id}`);
		await call("GET", "/api/v1/keys", "/api/v1/keys");

		const source = await call("POST", "/api/v1/sources", "/api/v1/sources", {
			body: { type: "openapi", name: "stand_in", spec: SOURCE_SPEC, base_url: "https://pets.example" }
		});
		const id = source.body.id as string;
		await call("GET", "/api/v1/sources", "/api/v1/sources");
		await call("GET", "/api/v1/sources/:id", `/api/v1/sources/${id}`);
		await call("POST", "/api/v1/sources/:id/refresh", `/api/v1/sources/${id}/refresh`, { body: {} });
		await call("DELETE", "/api/v1/sources/:id", `/api/v1/sources/${id}`);

		await call("GET", "/api/v1/audit", "/api/v1/audit");
		await call("GET", "/api/v1/audit", "/api/v1/audit?limit=1&action=key.create");
	});

	it("answers refusals with the documented Error shape and status", async () => {
		const tools = "/api/v1/tools";
		const refusals: [string, string, string, Parameters<typeof http>[3], number][] = [
			["POST", tools, tools, { body: "{not json" }, 400],
			["GET", tools, tools, { token: null }, 401],
			["GET", tools, tools, { token: "trk_nope" }, 401],
			["GET", "/api/v1/tools/:id", `${tools}/no-such-tool`, {}, 404],
			["POST", tools, tools, { body: clockTool("calculator"), tenant: "*" }, 409],
			["POST", tools, tools, { body: { name: "x".repeat(2 * 1024 * 1024) } }, 413],
			["POST", tools, tools, { body: "name=x", headers: { "content-type": "text/plain" } }, 415],
			["POST", tools, tools, { body: { name: "9bad", type: "nope" } }, 422],
			["POST", "/api/v1/keys", "/api/v1/keys", { body: { tenant_id: TENANT, scopes: [] } }, 422]
		];
		for (const [method, route, path, options, expected] of refusals) {
			const res = await call(method, route, path, options);
			expect([method, path, res.status]).toEqual([method, path, expected]);
		}
		const reader = await call("POST", "/api/v1/keys", "/api/v1/keys", {
			body: { tenant_id: TENANT, scopes: ["tools:read"] }
		});
		const refused = await call("POST", tools, tools, {
			token: reader.body.api_key,
			tenant: undefined,
			body: clockTool("nope")
		});
		expect(refused.status).toBe(403);
	});

	it("saw every /api/v1 route answer", () => {
		const routes = Object.keys(API_ROUTES).map(route => route.replace(" ", " /api/v1"));
		expect(routes.filter(route => !covered.has(route))).toEqual([]);
	});
});
