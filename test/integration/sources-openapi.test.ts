import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { eventually } from "../support/eventually";
import { registryMcpClient } from "../support/mcp";
import { http as rest, startNode, type TestNode } from "../support/node";
import { json, redirect, Upstream, type Reply } from "../support/upstream";

/**
 * A real HTTP API on 127.0.0.1 (allowed) that serves its own OpenAPI document, imported as a source;
 * its operations run as external_api tools through REST and tasks.
 */

const TENANT = `sources-openapi-${process.pid}`;

let node: TestNode;
let api: Upstream;
let apiUrl: string;
let document: Record<string, any>;
/** Paths the API answers with a 307 to the URL given. */
const redirects = new Map<string, string>();

const call = (method: string, path: string, body?: unknown, tenant = TENANT) =>
	rest(node.url, method, path, { body, tenant });

function petstore(): Record<string, any> {
	return {
		openapi: "3.1.0",
		info: { title: "Pets", version: "1.0.0" },
		servers: [{ url: "/v1" }],
		paths: {
			"/pets/{petId}": {
				parameters: [{ name: "petId", in: "path", required: true, schema: { type: "integer" } }],
				get: {
					operationId: "getPet",
					summary: "Read one pet",
					parameters: [
						{ name: "fields", in: "query", schema: { type: "string" }, description: "Fields to return" }
					],
					responses: { "200": { description: "the pet" } }
				}
			},
			"/pets": {
				post: {
					operationId: "createPet",
					summary: "Add a pet",
					tags: ["pets"],
					requestBody: {
						required: true,
						content: { "application/json": { schema: { $ref: "#/components/schemas/NewPet" } } }
					},
					responses: { "201": { description: "created" } }
				},
				delete: { summary: "Remove every pet", responses: { "204": { description: "gone" } } }
			}
		},
		components: {
			schemas: {
				NewPet: { type: "object", properties: { name: { type: "string" } }, required: ["name"] }
			}
		}
	};
}

async function toolNamed(name: string): Promise<any> {
	const page = await call("GET", "/api/v1/tools?limit=200");
	return page.body.items.find((tool: { name: string }) => tool.name === name);
}

/** The pet store: its document, its operations, and a 307 on each path in `redirects`. */
const answerApi: Reply = (req, res) => {
	const redirected = redirects.get(req.url);
	if (redirected) return redirect(res, 307, redirected);
	if (req.url === "/openapi.json") return json(res, 200, document);
	if (req.url.startsWith("/v1/pets/"))
		return json(res, 200, { id: Number(req.url.split(/[/?]/)[3]), name: "Rex" });
	if (req.url === "/v1/pets" && req.method === "POST")
		return json(res, 201, { id: 1, ...JSON.parse(req.body) });
	json(res, 200, {});
};

beforeAll(async () => {
	document = petstore();
	api = await Upstream.start(answerApi);
	apiUrl = api.url();
	node = await startNode({ settings: { outboundAllowHosts: ["127.0.0.1"] } });
});

afterAll(async () => {
	await node?.stop();
	await api?.close();
});

describe("an OpenAPI document imported as a tool source", () => {
	let sourceId: string;

	it("previews its tools with dry_run and stores nothing", async () => {
		const preview = await call("POST", "/api/v1/sources?dry_run=true", {
			type: "openapi",
			name: "pets",
			spec: petstore(),
			base_url: `${apiUrl}/v1`,
			headers: { "X-Api-Key": "preview-secret" }
		});
		expect(preview.status).toBe(200);
		expect(preview.body.tools.map((t: { name: string }) => t.name).sort()).toEqual([
			"pets__createPet",
			"pets__delete__pets",
			"pets__getPet"
		]);
		expect(preview.body.tools[0].config.headers).toEqual({ "X-Api-Key": "********" });
		expect(JSON.stringify(preview.body)).not.toContain("preview-secret");
		expect((await call("GET", "/api/v1/sources")).body.items).toEqual([]);
		expect(await toolNamed("pets__getPet")).toBeUndefined();
	});

	it("becomes one external_api tool per operation, parameters from path, query and JSON body", async () => {
		const created = await call("POST", "/api/v1/sources", {
			type: "openapi",
			name: "pets",
			url: `${apiUrl}/openapi.json`,
			headers: { Authorization: "Bearer api-secret" }
		});
		expect(created.status).toBe(201);
		expect(created.body).toMatchObject({
			type: "openapi",
			tool_count: 3,
			headers: { Authorization: "********" }
		});
		sourceId = created.body.id;
		const getPet = await toolNamed("pets__getPet");
		expect(getPet).toMatchObject({
			type: "external_api",
			description: "Read one pet",
			parameters: {
				type: "object",
				properties: {
					petId: { type: "integer" },
					fields: { type: "string", description: "Fields to return" }
				},
				required: ["petId"]
			},
			config: { url: `${apiUrl}/v1/pets/{{petId}}`, method: "GET", headers: { Authorization: "********" } }
		});
		const createPet = await toolNamed("pets__createPet");
		expect(createPet.parameters).toEqual({
			type: "object",
			properties: { body: { type: "object", properties: { name: { type: "string" } }, required: ["name"] } },
			required: ["body"]
		});
		expect(createPet.metadata.tags).toEqual(["openapi", "pets"]);
	});

	it("runs its operations through REST and tasks", async () => {
		await eventually(async () => expect((await toolNamed("pets__getPet")).status).toBe("active"));
		api.received = [];
		const read = await call("POST", "/api/v1/internal/execute", {
			tool_name: "pets__getPet",
			parameters: { petId: 7, fields: "name" }
		});
		expect(read.body).toMatchObject({
			status: "completed",
			result: { status: 200, data: { id: 7, name: "Rex" } }
		});
		// The source's own refreshes and probes reach the same upstream meanwhile: find the operation's call.
		const getPet = api.received.find(request => request.url.startsWith("/v1/pets/7"));
		expect(getPet).toMatchObject({ method: "GET", url: "/v1/pets/7?fields=name" });
		expect(getPet?.headers.authorization).toBe("Bearer api-secret");

		await eventually(async () => expect((await toolNamed("pets__createPet")).status).toBe("active"));
		const task = await call("POST", "/api/v1/internal/tasks", {
			type: "tool_execution",
			payload: { tool_name: "pets__createPet", parameters: { body: { name: "Tom" } } }
		});
		expect(task.status).toBe(202);
		const done = await eventually(async () => {
			const read = await call("GET", `/api/v1/internal/tasks/${task.body.task_id}`);
			expect(read.body.status).toBe("completed");
			return read.body;
		});
		expect(done.result).toMatchObject({ status: 201, data: { id: 1, name: "Tom" } });
		expect(api.received.find(r => r.method === "POST")?.body).toBe('{"name":"Tom"}');
	});

	it("is discovered and runs through the registry's MCP server", async () => {
		const found = await call("POST", "/api/v1/registry/discover", {
			query: "read one pet",
			types: ["external_api"]
		});
		expect(found.body.items.map((item: { tool: { name: string } }) => item.tool.name)).toContain(
			"pets__getPet"
		);
		const client = await registryMcpClient(node.url, TENANT);
		try {
			const { tools } = await client.listTools();
			expect(tools.find(tool => tool.name === "pets__getPet")).toMatchObject({ description: "Read one pet" });
			const result = (await client.callTool({
				name: "pets__getPet",
				arguments: { petId: 3 }
			})) as CallToolResult;
			expect(result.isError).toBeFalsy();
			expect(result.structuredContent).toMatchObject({ status: 200, data: { id: 3, name: "Rex" } });
		} finally {
			await client.close();
		}
	});

	it("survives its API going away and coming back: tools stay, unreachable, then healthy again", async () => {
		await api.close();
		const down = await call("POST", `/api/v1/sources/${sourceId}/refresh`);
		expect(down.status).toBe(200);
		expect(down.body).toMatchObject({
			tool_count: 3,
			health: { state: "unreachable", error: expect.any(String) }
		});
		expect(await toolNamed("pets__getPet")).toMatchObject({
			status: "active",
			health: { state: "unreachable" }
		});
		const failed = await call("POST", "/api/v1/internal/execute", {
			tool_name: "pets__getPet",
			parameters: { petId: 1 }
		});
		expect(failed.body).toMatchObject({ status: "failed", error: { type: "upstream_error" } });

		api = await Upstream.start(answerApi, { port: api.port });
		const up = await call("POST", `/api/v1/sources/${sourceId}/refresh`);
		expect(up.body).toMatchObject({
			health: { state: "healthy" },
			changes: { added: [], updated: [], disabled: [] }
		});
		expect((await toolNamed("pets__getPet")).health.state).toBe("healthy");
		await eventually(async () =>
			expect(
				(
					await call("POST", "/api/v1/internal/execute", {
						tool_name: "pets__getPet",
						parameters: { petId: 1 }
					})
				).body.status
			).toBe("completed")
		);
	});

	it("re-imported, updates changed operations as new versions, adds new ones and disables removed ones", async () => {
		const before = await toolNamed("pets__getPet");
		document.paths["/pets/{petId}"].get.summary = "Read one pet by its id";
		delete document.paths["/pets"].delete;
		document.paths["/owners"] = {
			get: { operationId: "listOwners", responses: { "200": { description: "ok" } } }
		};
		const refreshed = await call("POST", `/api/v1/sources/${sourceId}/refresh`);
		expect(refreshed.status).toBe(200);
		expect(refreshed.body.changes).toMatchObject({
			added: ["pets__listOwners"],
			updated: ["pets__getPet"],
			disabled: ["pets__delete__pets"]
		});
		const after = await toolNamed("pets__getPet");
		expect(after).toMatchObject({
			id: before.id,
			version: before.version + 1,
			description: "Read one pet by its id"
		});
		expect(after.definition_hash).not.toBe(before.definition_hash);
		expect(await toolNamed("pets__delete__pets")).toMatchObject({ status: "disabled" });
	});

	it("given inline, is re-imported from a new spec sent with refresh; a spec that cannot be imported changes nothing", async () => {
		const created = await call("POST", "/api/v1/sources", {
			type: "openapi",
			name: "inline",
			spec: petstore(),
			base_url: `${apiUrl}/v1`
		});
		expect(created.status).toBe(201);
		const before = await toolNamed("inline__getPet");
		const next = petstore();
		next.paths["/pets/{petId}"].get.description = "Fields may be chosen.";
		delete next.paths["/pets"].delete;
		const refreshed = await call("POST", `/api/v1/sources/${created.body.id}/refresh`, { spec: next });
		expect(refreshed.status).toBe(200);
		expect(refreshed.body.changes).toMatchObject({
			added: [],
			updated: ["inline__getPet"],
			disabled: ["inline__delete__pets"]
		});
		const after = await toolNamed("inline__getPet");
		expect(after).toMatchObject({
			version: before.version + 1,
			description: "Read one pet\n\nFields may be chosen."
		});
		expect(after.definition_hash).not.toBe(before.definition_hash);
		// Read again without a spec: the stored one is the new one.
		const again = await call("POST", `/api/v1/sources/${created.body.id}/refresh`);
		expect(again.body.changes).toMatchObject({ added: [], updated: [], disabled: [], enabled: [] });

		const broken = await call("POST", `/api/v1/sources/${created.body.id}/refresh`, {
			spec: { swagger: "2.0" }
		});
		expect(broken.status).toBe(422);
		expect(broken.body.data[0]).toMatchObject({ field: "spec.openapi" });
		expect((await toolNamed("inline__getPet")).version).toBe(after.version);
		const fromUrl = await call("POST", `/api/v1/sources/${sourceId}/refresh`, { spec: next });
		expect(fromUrl.status).toBe(422);
		expect(fromUrl.body.data[0]).toMatchObject({ field: "spec" });
		expect((await call("DELETE", `/api/v1/sources/${created.body.id}`)).status).toBe(204);
	});

	it("is deleted with its tools", async () => {
		expect((await call("DELETE", `/api/v1/sources/${sourceId}`)).status).toBe(204);
		expect(await toolNamed("pets__getPet")).toBeUndefined();
	});
});

describe("the document's URL and its redirects pass the address guard", () => {
	afterEach(() => redirects.clear());
	const preview = (url: string, headers?: Record<string, string>) =>
		call("POST", "/api/v1/sources?dry_run=true", { type: "openapi", name: "moved", url, headers });

	it("follows a redirect to an allowed address", async () => {
		redirects.set("/moved.json", "/openapi.json");
		const answer = await preview(`${apiUrl}/moved.json`);
		expect(answer.status).toBe(200);
		expect(answer.body.tools.map((t: { name: string }) => t.name)).toContain("moved__getPet");
	});

	it("follows a redirect to another origin without the source's headers", async () => {
		const docs = await Upstream.start((_req, res) => json(res, 200, document));
		try {
			redirects.set("/other.json", docs.url("/openapi.json"));
			api.received = [];
			const answer = await preview(`${apiUrl}/other.json`, { Authorization: "Bearer doc-secret" });
			expect(answer.status).toBe(200);
			expect(api.received.find(r => r.url === "/other.json")?.headers.authorization).toBe(
				"Bearer doc-secret"
			);
			expect(docs.received.length).toBeGreaterThan(0);
			expect(docs.received.map(r => r.headers.authorization)).toEqual(docs.received.map(() => undefined));
		} finally {
			await docs.close();
		}
	});

	it("refuses a redirect to a refused address, which never receives a request", async () => {
		const refused = await Upstream.victim("127.0.0.2");
		try {
			redirects.set("/far.json", refused.url("/openapi.json"));
			const answer = await call("POST", "/api/v1/sources", {
				type: "openapi",
				name: "far",
				url: `${apiUrl}/far.json`
			});
			expect(answer.status).toBe(422);
			expect(answer.body.data).toEqual([{ field: "url", message: expect.stringContaining("refused") }]);
			expect(refused.connections).toBe(0);
			expect((await call("GET", "/api/v1/sources")).body.items).toEqual([]);
		} finally {
			await refused.close();
		}
	});
});

describe("OpenAPI documents that cannot be imported", () => {
	it("refuses a document at a refused address, which never receives a request", async () => {
		const refused = await Upstream.victim("127.0.0.2");
		try {
			const answer = await call("POST", "/api/v1/sources", {
				type: "openapi",
				name: "far",
				url: refused.url("/openapi.json")
			});
			expect(answer.status).toBe(422);
			expect(answer.body.data[0]).toMatchObject({ field: "url" });
			expect(refused.connections).toBe(0);
		} finally {
			await refused.close();
		}
	});

	it("refuses a $ref outside the document", async () => {
		const spec = petstore();
		spec.components.schemas.NewPet = { $ref: "http://127.0.0.2/schemas/pet.json" };
		const answer = await call("POST", "/api/v1/sources", {
			type: "openapi",
			name: "remote",
			spec,
			base_url: apiUrl
		});
		expect(answer.status).toBe(422);
		expect(answer.body.data).toEqual([
			{ field: "spec.components.schemas.NewPet.$ref", message: expect.stringContaining("outside") }
		]);
	});

	it("explains an invalid document, a Swagger 2 one and one without a server", async () => {
		const invalid = await call("POST", "/api/v1/sources", {
			type: "openapi",
			name: "bad",
			spec: { openapi: "3.1.0", paths: 3 }
		});
		expect(invalid.status).toBe(422);
		const swagger = await call("POST", "/api/v1/sources", {
			type: "openapi",
			name: "old",
			spec: { swagger: "2.0" }
		});
		expect(swagger.body.data[0]).toMatchObject({ field: "spec.openapi" });
		const { servers: _servers, ...serverless } = petstore();
		const noServer = await call("POST", "/api/v1/sources", {
			type: "openapi",
			name: "nowhere",
			spec: serverless
		});
		expect(noServer.body.data[0]).toMatchObject({ field: "base_url" });
		const both = await call("POST", "/api/v1/sources", {
			type: "openapi",
			name: "both",
			spec: petstore(),
			url: `${apiUrl}/openapi.json`
		});
		expect(both.status).toBe(422);
	});

	it("accepts a YAML document; an operation without summary or description is described by its method and path", async () => {
		const yaml = `openapi: 3.0.3\ninfo: {title: t, version: "1"}\npaths:\n  /ping:\n    get:\n      operationId: ping\n      responses: {"200": {description: ok}}\n`;
		const answer = await call("POST", "/api/v1/sources?dry_run=true", {
			type: "openapi",
			name: "yamlapi",
			spec: yaml,
			base_url: apiUrl
		});
		expect(answer.status).toBe(200);
		expect(answer.body.tools).toEqual([
			expect.objectContaining({ name: "yamlapi__ping", type: "external_api", description: "GET /ping" })
		]);
	});
});
