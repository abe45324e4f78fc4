import { OPS_COMMANDS } from "../../lib/repl-commands";
import { BACKENDS, dropPrefix, uniquePrefix } from "../support/backends";
import { http, startNode, type TestNode } from "../support/node";
import { clockTool } from "../support/definitions";
import { eventually } from "../support/eventually";

let tenantCounter = 0;
const newTenant = () => `trail-${process.pid}-${++tenantCounter}`;

interface Entry {
	id: string;
	at: string;
	tenant_id: string;
	actor: { kind: string; key_id?: string; agent_id?: string };
	action: string;
	target: string;
	definition_hash?: string;
	outcome: string;
}

describe.each(BACKENDS)("audit trail over HTTP on the $name store", ({ redisUrl }) => {
	let node: TestNode;
	const prefix = uniquePrefix();
	const call = (method: string, path: string, tenant: string, body?: unknown, token?: string) =>
		http(node.url, method, `/api/v1${path}`, { tenant, body, ...(token ? { token } : {}) });
	const trail = async (tenant: string, query = "", token?: string): Promise<Entry[]> => {
		const res = await call("GET", `/audit${query}`, tenant, undefined, token);
		expect(res.status).toBe(200);
		return res.body.items;
	};

	beforeAll(async () => {
		node = await startNode({ redisUrl, redisPrefix: prefix });
	});

	afterAll(async () => {
		await node.stop();
		if (redisUrl) await dropPrefix(redisUrl, prefix);
	});

	/** register, update, execute, rollback, key create, key revoke: the session the tests below read. */
	const scriptedSession = async (tenant: string) => {
		const admin = await call("POST", "/keys", tenant, {
			tenant_id: tenant,
			scopes: ["tools:read", "tools:write", "tools:execute", "keys:admin"],
			agent_id: "agent-1"
		});
		expect(admin.status).toBe(201);
		const key = admin.body.api_key as string;
		const created = await call(
			"POST",
			"/tools",
			tenant,
			clockTool("clock", { description: "The time" }),
			key
		);
		expect(created.status).toBe(201);
		const updated = await call("PATCH", `/tools/${created.body.id}`, tenant, { description: "Now" }, key);
		expect(updated.status).toBe(200);
		const ran = await call(
			"POST",
			"/internal/execute",
			tenant,
			{ tool_id: created.body.id, parameters: { operation: "now" } },
			key
		);
		expect(ran.body.status).toBe("completed");
		const rolledBack = await call("POST", `/tools/${created.body.id}/rollback`, tenant, { version: 1 }, key);
		expect(rolledBack.status).toBe(200);
		expect(rolledBack.body).toMatchObject({ version: 3, definition_hash: created.body.definition_hash });
		const other = await call(
			"POST",
			"/keys",
			tenant,
			{ tenant_id: tenant, scopes: ["tools:read"], agent_id: "agent-1" },
			key
		);
		expect(other.status).toBe(201);
		expect((await call("DELETE", `/keys/${other.body.key_id}`, tenant, undefined, key)).status).toBe(204);
		return {
			key,
			adminKeyId: admin.body.key_id as string,
			otherKeyId: other.body.key_id as string,
			tool: created.body as { id: string; definition_hash: string },
			updatedHash: updated.body.definition_hash as string,
			executionId: ran.body.execution_id as string
		};
	};

	it("reads a scripted session back complete, newest first, with actor, target and hashes", async () => {
		const tenant = newTenant();
		const s = await scriptedSession(tenant);
		const entries = await trail(tenant);
		expect(entries.map(e => [e.action, e.target, e.outcome])).toEqual([
			["key.revoke", `key:${s.otherKeyId}`, "success"],
			["key.create", `key:${s.otherKeyId}`, "success"],
			["tool.rollback", `tool:${s.tool.id}`, "success"],
			["tool.execute", `tool:${s.tool.id}`, "completed"],
			["tool.update", `tool:${s.tool.id}`, "success"],
			["tool.register", `tool:${s.tool.id}`, "success"],
			["key.create", `key:${s.adminKeyId}`, "success"]
		]);
		const byAction = Object.fromEntries(entries.map(e => [e.action, e]));
		expect(byAction["tool.register"].definition_hash).toBe(s.tool.definition_hash);
		expect(byAction["tool.update"].definition_hash).toBe(s.updatedHash);
		expect(byAction["tool.execute"].definition_hash).toBe(s.updatedHash);
		// A rollback is a new version carrying the earlier definition, hash included.
		expect(byAction["tool.rollback"].definition_hash).toBe(s.tool.definition_hash);
		expect(byAction["tool.update"].actor).toEqual({ kind: "key", key_id: s.adminKeyId, agent_id: "agent-1" });
		// The first key was created with the service token.
		expect(entries.at(-1)!.actor).toEqual({ kind: "service" });
		for (const entry of entries) expect(entry.tenant_id).toBe(tenant);
		const ids = entries.map(e => e.id);
		expect(new Set(ids).size).toBe(ids.length);
	});

	it("shows a tenant only its own trail", async () => {
		const [a, b] = [newTenant(), newTenant()];
		const s = await scriptedSession(a);
		await scriptedSession(b);
		const ofA = await trail(a, "?limit=200", s.key);
		expect(ofA).toHaveLength(7);
		expect(ofA.every(e => e.tenant_id === a)).toBe(true);
		// A key of tenant A naming tenant B is refused; the service token for B sees B's entries only.
		expect((await call("GET", "/audit", b, undefined, s.key)).status).toBe(403);
		expect((await trail(b)).every(e => e.tenant_id === b)).toBe(true);
	});

	it("filters by action and target, pages with a cursor, and answers entries since an instant", async () => {
		const tenant = newTenant();
		const s = await scriptedSession(tenant);
		expect((await trail(tenant, "?action=key.create")).map(e => e.target)).toEqual([
			`key:${s.otherKeyId}`,
			`key:${s.adminKeyId}`
		]);
		expect((await trail(tenant, `?target=tool:${s.tool.id}`)).map(e => e.action)).toEqual([
			"tool.rollback",
			"tool.execute",
			"tool.update",
			"tool.register"
		]);
		const first = await call("GET", "/audit?limit=4", tenant);
		const rest = await call("GET", `/audit?limit=4&cursor=${first.body.next_cursor}`, tenant);
		expect([...first.body.items, ...rest.body.items].map((e: Entry) => e.id)).toEqual(
			(await trail(tenant)).map(e => e.id)
		);
		const all = await trail(tenant);
		const since = all[1].at;
		const recent = await trail(
			tenant,
			`?since=${encodeURIComponent(new Date(Date.parse(since) + 1).toISOString())}`
		);
		expect(recent.length).toBeLessThan(all.length);
		expect(recent.every(e => Date.parse(e.at) > Date.parse(since))).toBe(true);
		expect((await call("GET", "/audit?since=yesterday", tenant)).status).toBe(400);
		expect((await call("GET", "/audit?cursor=nope", tenant)).status).toBe(400);
	});

	it("is readable only with keys:admin or the service token", async () => {
		const tenant = newTenant();
		const reader = await call("POST", "/keys", tenant, {
			tenant_id: tenant,
			scopes: ["tools:read", "tools:write"]
		});
		expect((await call("GET", "/audit", tenant, undefined, reader.body.api_key)).status).toBe(403);
	});

	it("records nothing for a write that did not happen", async () => {
		const tenant = newTenant();
		const created = await call("POST", "/tools", tenant, clockTool("clock"));
		expect((await call("POST", "/tools", tenant, clockTool("clock"))).status).toBe(409);
		const stale = await call("PATCH", `/tools/${created.body.id}`, tenant, {
			description: "x",
			expected_version: 7
		});
		expect(stale.status).toBe(409);
		expect((await trail(tenant)).map(e => e.action)).toEqual(["tool.register"]);
	});

	it("records deletion, disabling and validation outcomes", async () => {
		const tenant = newTenant();
		const created = await call("POST", "/tools", tenant, clockTool("clock"));
		await node.broker.call(
			"registry.setStatus",
			{ id: created.body.id, status: "disabled" },
			{ meta: { tenant_id: tenant } }
		);
		expect((await call("POST", `/tools/${created.body.id}/validate`, tenant)).status).toBe(200);
		expect((await call("DELETE", `/tools/${created.body.id}`, tenant)).status).toBe(204);
		expect((await trail(tenant)).map(e => [e.action, e.outcome])).toEqual([
			["tool.delete", "success"],
			["tool.validate", "valid"],
			["tool.disable", "success"],
			["tool.register", "success"]
		]);
	});

	it("records source changes, and the tools a source brings as tool changes", async () => {
		const tenant = newTenant();
		const spec = {
			openapi: "3.1.0",
			info: { title: "Pets", version: "1.0.0" },
			paths: { "/pets": { get: { operationId: "listPets", summary: "List pets", responses: {} } } }
		};
		const created = await call("POST", "/sources", tenant, {
			type: "openapi",
			name: "pets",
			spec,
			base_url: "https://pets.example.com",
			headers: { Authorization: "Bearer source-secret-123" }
		});
		expect(created.status).toBe(201);
		expect((await call("POST", `/sources/${created.body.id}/refresh`, tenant)).status).toBe(200);
		expect((await call("DELETE", `/sources/${created.body.id}`, tenant)).status).toBe(204);
		const entries = await trail(tenant);
		const source = `source:${created.body.id}`;
		expect(entries.filter(e => e.target === source).map(e => e.action)).toEqual([
			"source.delete",
			"source.refresh",
			"source.create"
		]);
		expect(entries.map(e => e.action)).toEqual(expect.arrayContaining(["tool.register", "tool.delete"]));
		expect(JSON.stringify(entries)).not.toContain("source-secret-123");
	});

	it("records task submissions and the runs of queued executions", async () => {
		const tenant = newTenant();
		const res = await call("POST", "/internal/tasks", tenant, {
			payload: { tool_name: "datetime", parameters: { operation: "now" } }
		});
		expect(res.status).toBe(202);
		expect((await trail(tenant, "?action=task.submit")).map(e => e.target)).toEqual([
			`task:${res.body.task_id}`
		]);
		// The queue appends the run's entry with the task's outcome.
		const done = await eventually(async () => {
			const task = await call("GET", `/internal/tasks/${res.body.task_id}`, tenant);
			expect(task.body.status).toBe("completed");
			return task.body;
		});
		const runs = await trail(tenant, "?action=tool.execute");
		expect(runs).toHaveLength(1);
		expect(runs[0]).toMatchObject({
			outcome: "completed",
			details: { execution_id: done.metadata.execution_id }
		});
	});

	it("never records a tool's secrets", async () => {
		const tenant = newTenant();
		const secret = `audit-secret-${Date.now()}`;
		const created = await call("POST", "/tools", tenant, {
			name: "weather",
			description: "Current weather for a city",
			type: "external_api",
			config: {
				url: "https://api.example.com/weather",
				headers: { "X-Api-Key": secret },
				query: { token: secret }
			}
		});
		expect(created.status).toBe(201);
		const patched = await call("PATCH", `/tools/${created.body.id}`, tenant, {
			config: { url: "https://api.example.com/weather", headers: { "X-Api-Key": `${secret}-2` } }
		});
		expect(patched.status).toBe(200);
		const text = JSON.stringify(await trail(tenant));
		expect(text).toContain("tool.update");
		expect(text).not.toContain(secret);
	});

	it("is shown by the REPL audit command", async () => {
		const tenant = newTenant();
		await scriptedSession(tenant);
		const audit = OPS_COMMANDS.find(c => c.command.startsWith("audit"))!;
		const text = await audit.run(node.broker, { tenant });
		expect(text.split("\n")[0]).toMatch(/at\s+action\s+target\s+outcome\s+actor/);
		expect(text).toContain("key.revoke");
		expect(await audit.run(node.broker, { tenant, action: "tool.update" })).not.toContain("key.revoke");
	});
});
