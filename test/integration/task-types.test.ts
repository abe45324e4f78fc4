import { randomUUID } from "node:crypto";
import Redis from "ioredis";
import { BACKENDS, dropPrefix, uniquePrefix } from "../support/backends";
import { eventually } from "../support/eventually";
import { http, startNode, type TestNode } from "../support/node";
import { everyValue } from "../support/redis-keys";

/**
 * The three task types of `POST /api/v1/internal/tasks`: the type decides the scope a submission needs
 * (as the direct request would) and what the task does: run a tool, register one, or discover tools.
 */
describe.each(BACKENDS)("task types on the $name backend", ({ redisUrl }) => {
	let node: TestNode;
	const prefix = uniquePrefix();
	const tenant = `task-types-${randomUUID().slice(0, 8)}`;
	const keys: Record<string, string> = {};

	const keyWith = async (scopes: string[]) => {
		const res = await http(node.url, "POST", "/api/v1/keys", { tenant, body: { tenant_id: tenant, scopes } });
		expect(res.status).toBe(201);
		return res.body.api_key as string;
	};
	const submit = (token: string, body: Record<string, unknown>) =>
		http(node.url, "POST", "/api/v1/internal/tasks", { token, body });
	const finished = async (taskId: string) => {
		let task: Record<string, any> = {};
		await eventually(async () => {
			task = (await http(node.url, "GET", `/api/v1/internal/tasks/${taskId}`, { tenant })).body;
			expect(["completed", "failed"]).toContain(task.status);
		}, 15000);
		return task;
	};
	const definition = (name: string) => ({
		name,
		description: `Adds numbers for the ${name} test`,
		type: "calculator",
		parameters: { type: "object", properties: { expression: { type: "string" } }, required: ["expression"] }
	});
	const toolNames = async () =>
		(await http(node.url, "GET", "/api/v1/tools?limit=200", { tenant })).body.items.map(
			(tool: { name: string }) => tool.name
		);

	beforeAll(async () => {
		node = await startNode({ redisUrl, redisPrefix: prefix });
		keys.execute = await keyWith(["tools:execute"]);
		keys.read = await keyWith(["tools:read"]);
		keys.write = await keyWith(["tools:write", "tools:read"]);
	});

	afterAll(async () => {
		await node?.stop();
		if (redisUrl) await dropPrefix(redisUrl, prefix);
	});

	it("refuses a registration task from a key that may only execute, and registers nothing", async () => {
		const res = await submit(keys.execute, { type: "tool_registration", payload: definition("smuggled") });
		expect(res.status).toBe(403);
		expect(res.body.type).toBe("FORBIDDEN");
		expect(res.body.message).toContain("tools:write");
		expect(await toolNames()).not.toContain("smuggled");
	});

	it("refuses execution and registration tasks from a read-only key", async () => {
		const execution = { payload: { tool_name: "calculator", parameters: { expression: "1+1" } } };
		expect((await submit(keys.read, execution)).status).toBe(403);
		expect((await submit(keys.read, { type: "tool_registration", payload: definition("nope") })).status).toBe(
			403
		);
	});

	it("refuses a registration task whose definition has no description, and queues nothing", async () => {
		const { description: _omitted, ...undescribed } = definition("undescribed");
		const res = await submit(keys.write, { type: "tool_registration", payload: undescribed });
		expect(res.status).toBe(422);
		expect(res.body).toMatchObject({ type: "VALIDATION_ERROR", data: [{ field: "description" }] });
		expect(await toolNames()).not.toContain("undescribed");
	});

	it("registers the definition of a registration task; the result is the stored tool", async () => {
		const res = await submit(keys.write, { type: "tool_registration", payload: definition("queued_adder") });
		expect(res.status).toBe(202);
		const task = await finished(res.body.task_id);
		expect(task.status).toBe("completed");
		expect(task.result).toMatchObject({ name: "queued_adder", tenant_id: tenant, version: 1 });
		expect(await toolNames()).toContain("queued_adder");
	});

	it("keeps a registration's secrets out of the task record: sealed in Redis, masked in reads", async () => {
		const keyed = {
			...definition("keyed_adder"),
			type: "external_api",
			parameters: { type: "object", properties: {} },
			config: { url: "https://api.example.com/add", headers: { "X-Api-Key": "task-secret" } }
		};
		const res = await submit(keys.write, { type: "tool_registration", payload: keyed });
		expect(res.status).toBe(202);
		const task = await finished(res.body.task_id);
		expect(task.status).toBe("completed");
		expect(task.payload.config.headers).toEqual({ "X-Api-Key": "********" });
		expect(task.result.config.headers).toEqual({ "X-Api-Key": "********" });
		const stored = await node.broker.call<any, any>(
			"registry.resolve",
			{ tool_id: task.result.id },
			{ meta: { tenant_id: tenant } }
		);
		expect(stored.config.headers).toEqual({ "X-Api-Key": "task-secret" });
		if (!redisUrl) return;
		const redis = new Redis(redisUrl);
		try {
			expect((await everyValue(redis, prefix)).filter(value => value.includes("task-secret"))).toEqual([]);
		} finally {
			redis.disconnect();
		}
	});

	it("answers a discovery task with the discovery response, for a read-only key", async () => {
		const res = await submit(keys.read, {
			type: "tool_discovery",
			payload: { query: "add numbers", limit: 5 }
		});
		expect(res.status).toBe(202);
		const task = await finished(res.body.task_id);
		expect(task.status).toBe("completed");
		const direct = await http(node.url, "POST", "/api/v1/registry/discover", {
			token: keys.read,
			body: { query: "add numbers", limit: 5 }
		});
		expect(Object.keys(task.result).sort()).toEqual(Object.keys(direct.body).sort());
	});

	it("fails a discovery task whose body the discovery refuses, naming the problems", async () => {
		const res = await submit(keys.read, { type: "tool_discovery", payload: { limit: "many" } });
		expect(res.status).toBe(202);
		const task = await finished(res.body.task_id);
		expect(task.status).toBe("failed");
		expect(task.error.type).toBe("validation_error");
		expect(task.result.errors.length).toBeGreaterThan(0);
	});
});
