import { randomUUID } from "crypto";
import type { Context, ServiceSchema } from "moleculer";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import {
	CallToolResultSchema,
	CreateTaskResultSchema,
	ErrorCode,
	type CallToolResult
} from "@modelcontextprotocol/sdk/types.js";
import { describeWithNats, describeWithRedis, dropPrefix, uniquePrefix } from "../support/backends";
import { eventually } from "../support/eventually";
import { protocolError } from "../support/mcp";
import { http, SERVICE_TOKEN, startNode, type TestNode } from "../support/node";
import { OrchestratorStandIn } from "../support/orchestrator";

jest.setTimeout(60000);

// The queue lives in Redis and the executor is another node on NATS: the suite needs both.
const describeWithCluster =
	describeWithRedis === describe && describeWithNats === describe ? describe : describe.skip;

describeWithCluster("MCP Tasks on the tenant's durable queue, run by an executor on another node", () => {
	const transporter = process.env.TEST_NATS_URL!;
	const redisUrl = process.env.TEST_REDIS_URL!;
	const namespace = `mcp-tasks-${randomUUID()}`;
	const prefix = uniquePrefix();
	const tenant = `mcp-tasks-${process.pid}`;
	const clients: Client[] = [];
	let gateway: TestNode;
	let executor: TestNode | null = null;
	let orchestrator: OrchestratorStandIn;

	const connect = async (headers: Record<string, string>) => {
		const client = new Client({ name: "mcp-tasks-test", version: "1.0.0" });
		clients.push(client);
		await client.connect(
			new StreamableHTTPClientTransport(new URL(`${gateway.url}/mcp`), {
				requestInit: { headers: { authorization: `Bearer ${SERVICE_TOKEN}`, ...headers } }
			})
		);
		return client;
	};

	/** A task-augmented tools/call: answered at once with the task. */
	const callAsTask = (client: Client, name: string, args: Record<string, unknown>) =>
		client
			.request(
				{ method: "tools/call", params: { name, arguments: args, task: { ttl: 60000 } } },
				CreateTaskResultSchema
			)
			.then(answer => answer.task);

	/** Holds `held.work` until released: a task that stays running while the test looks at it. */
	let release: () => void = () => undefined;
	const HeldService = {
		name: "held",
		actions: {
			work: {
				tool: { description: "Work that waits until the test lets it finish" },
				params: { n: "number" },
				async handler(ctx: Context<{ n: number }>) {
					await new Promise<void>(resolve => (release = resolve));
					return { n: ctx.params.n };
				}
			}
		}
	} as unknown as ServiceSchema;

	/** The executor node, started once: until then tasks wait in their queue. */
	const ensureExecutor = async () => {
		if (executor) return;
		executor = await startNode({
			services: ["executor"],
			transporter,
			redisUrl,
			redisPrefix: prefix,
			nodeID: "mcp-executor",
			broker: { namespace }
		});
		executor.broker.createService(HeldService);
	};

	const restTask = (id: string, as = tenant) =>
		http(gateway.url, "GET", `/api/v1/internal/tasks/${id}`, { tenant: as });

	beforeAll(async () => {
		orchestrator = await OrchestratorStandIn.start();
		// No executor here: every task must be run by the executor node.
		gateway = await startNode({
			services: ["api", "keys", "registry", "validator", "notifier", "audit"],
			settings: { wsUrl: orchestrator.url, mcpTasks: { pollIntervalMs: 100, pageSize: 2, maxPerOwner: 100 } },
			transporter,
			redisUrl,
			redisPrefix: prefix,
			nodeID: "mcp-gateway",
			broker: { namespace }
		});
	}, 60000);

	afterAll(async () => {
		await Promise.all(clients.map(client => client.close().catch(() => undefined)));
		await executor?.stop();
		await gateway?.stop();
		await orchestrator?.stop();
		await dropPrefix(redisUrl, prefix);
	}, 60000);

	it("declares the tasks capability, and which tools may run as tasks", async () => {
		const client = await connect({ "x-tenant-id": tenant });
		expect(client.getServerCapabilities()?.tasks).toEqual({
			list: {},
			cancel: {},
			requests: { tools: { call: {} } }
		});
		const { tools } = await client.listTools();
		const byName = Object.fromEntries(tools.map(tool => [tool.name, tool]));
		expect(byName.calculator.execution).toEqual({ taskSupport: "optional" });
		expect(byName.search_tools.execution).toEqual({ taskSupport: "forbidden" });
	});

	it("queues a task while no executor runs; tasks/cancel cancels it, once", async () => {
		const client = await connect({ "x-tenant-id": tenant });
		const task = await callAsTask(client, "calculator", { expression: "6 * 7" });
		expect(task).toMatchObject({ status: "working", statusMessage: "queued", ttl: null, pollInterval: 100 });
		expect(Date.parse(task.createdAt)).not.toBeNaN();
		expect(await client.experimental.tasks.getTask(task.taskId)).toMatchObject({
			taskId: task.taskId,
			status: "working"
		});
		// The same task over REST: one task, two views.
		const queued = await restTask(task.taskId);
		expect(queued.status).toBe(200);
		expect(queued.body).toMatchObject({
			task_id: task.taskId,
			tenant_id: tenant,
			status: "pending",
			type: "tool_execution",
			payload: { tool_name: "calculator", parameters: { expression: "6 * 7" } },
			metadata: { source: "agent_execution", session_id: expect.any(String) }
		});

		const cancelled = await client.experimental.tasks.cancelTask(task.taskId);
		expect(cancelled).toMatchObject({ taskId: task.taskId, status: "cancelled" });
		expect(cancelled.ttl).toEqual(expect.any(Number));
		expect((await restTask(task.taskId)).body.status).toBe("cancelled");
		const again = await protocolError(client.experimental.tasks.cancelTask(task.taskId));
		expect(again.code).toBe(ErrorCode.InvalidParams);
		expect(again.message).toMatch(/terminal status.*cancelled/);
		const result = await client.experimental.tasks.getTaskResult(task.taskId, CallToolResultSchema);
		expect(result).toMatchObject({
			isError: true,
			content: [{ type: "text", text: expect.stringMatching(/^cancelled:/) }]
		});
	});

	it("runs a task on the executor node; tasks/result waits for it and answers the CallToolResult", async () => {
		const client = await connect({ "x-tenant-id": tenant, "x-agent-id": "agent-1" });
		const task = await callAsTask(client, "calculator", { expression: "2 km to m" });
		// Queued before any executor exists: durable, and picked up once one joins.
		await ensureExecutor();

		const result = (await client.experimental.tasks.getTaskResult(
			task.taskId,
			CallToolResultSchema
		)) as CallToolResult;
		expect(result.isError).toBeFalsy();
		expect(result.structuredContent).toEqual({ value: "2000 m" });
		expect(result._meta).toEqual({ "io.modelcontextprotocol/related-task": { taskId: task.taskId } });
		expect(await client.experimental.tasks.getTask(task.taskId)).toMatchObject({
			status: "completed",
			ttl: expect.any(Number)
		});
		const stored = await restTask(task.taskId);
		expect(stored.body).toMatchObject({
			status: "completed",
			result: { value: "2000 m" },
			metadata: { agent_id: "agent-1" }
		});
		// Announced to the orchestrator like any queued task.
		await eventually(async () => {
			const frames = orchestrator.connections.flatMap(c => c.messages).filter(m => m.task_id === task.taskId);
			expect(frames.map(frame => frame.event)).toContain("task_completed");
		}, 15000);

		// A tool that fails: the task fails, and tasks/result is the tool error a direct call would give.
		const failing = await callAsTask(client, "calculator", { expression: "unknownFunction(1)" });
		const failure = await client.experimental.tasks.getTaskResult(failing.taskId, CallToolResultSchema);
		expect(failure.isError).toBe(true);
		expect(await client.experimental.tasks.getTask(failing.taskId)).toMatchObject({
			status: "failed",
			statusMessage: expect.stringMatching(/^tool_error: /)
		});
	});

	it("refuses to cancel a task that is already running, and lets it finish", async () => {
		await ensureExecutor();
		await eventually(async () => {
			const found = await http(gateway.url, "GET", "/api/v1/tools?type=moleculer_action", { tenant });
			expect(found.body.items.map((tool: { name: string }) => tool.name)).toContain("held_work");
		}, 20000);
		const client = await connect({ "x-tenant-id": tenant });
		const task = await callAsTask(client, "held_work", { n: 7 });
		await eventually(async () => expect((await restTask(task.taskId)).body.status).toBe("processing"), 15000);
		expect(await client.experimental.tasks.getTask(task.taskId)).toMatchObject({
			status: "working",
			statusMessage: "running (attempt 1)"
		});

		const refused = await protocolError(client.experimental.tasks.cancelTask(task.taskId));
		expect(refused.code).toBe(ErrorCode.InvalidParams);
		expect(refused.message).toContain("already running");
		release();
		const result = await client.experimental.tasks.getTaskResult(task.taskId, CallToolResultSchema);
		expect(result.structuredContent).toEqual({ n: 7 });
	});

	it("binds every task to its tenant and agent: another caller is told it does not exist", async () => {
		const owner = await connect({ "x-tenant-id": tenant, "x-agent-id": "agent-owner" });
		const task = await callAsTask(owner, "calculator", { expression: "1 + 1" });
		const strangers = [
			await connect({ "x-tenant-id": `${tenant}-other`, "x-agent-id": "agent-owner" }),
			await connect({ "x-tenant-id": tenant, "x-agent-id": "agent-other" })
		];
		for (const stranger of strangers) {
			for (const attempt of [
				stranger.experimental.tasks.getTask(task.taskId),
				stranger.experimental.tasks.getTaskResult(task.taskId, CallToolResultSchema),
				stranger.experimental.tasks.cancelTask(task.taskId)
			]) {
				const refused = await protocolError(attempt);
				expect(refused.code).toBe(ErrorCode.InvalidParams);
				expect(refused.message).toMatch(/not found/i);
			}
			expect((await stranger.experimental.tasks.listTasks()).tasks).toEqual([]);
		}
		expect((await restTask(task.taskId, `${tenant}-other`)).status).toBe(404);
		// Its owner sees it from any session.
		const again = await connect({ "x-tenant-id": tenant, "x-agent-id": "agent-owner" });
		expect((await again.experimental.tasks.getTask(task.taskId)).taskId).toBe(task.taskId);
	});

	it("pages tasks/list newest first with nextCursor, each task once", async () => {
		const client = await connect({ "x-tenant-id": tenant, "x-agent-id": "agent-lister" });
		const created: string[] = [];
		for (const expression of ["1 + 2", "2 + 3", "3 + 4"])
			created.push((await callAsTask(client, "calculator", { expression })).taskId);

		const first = await client.experimental.tasks.listTasks();
		expect(first.tasks.map(task => task.taskId)).toEqual([created[2], created[1]]);
		expect(first.nextCursor).toEqual(expect.any(String));
		const second = await client.experimental.tasks.listTasks(first.nextCursor);
		expect(second.tasks.map(task => task.taskId)).toEqual([created[0]]);
		expect(second.nextCursor).toBeUndefined();

		const badCursor = await protocolError(client.experimental.tasks.listTasks("not-a-cursor"));
		expect(badCursor.code).toBe(ErrorCode.InvalidParams);
	});

	it("refuses what cannot become a task with the spec's codes", async () => {
		const client = await connect({ "x-tenant-id": tenant });
		// search_tools declares taskSupport "forbidden": -32601, as the spec says.
		const forbidden = await protocolError(callAsTask(client, "search_tools", { query: "math" }));
		expect(forbidden.code).toBe(ErrorCode.MethodNotFound);
		const unknown = await protocolError(callAsTask(client, "no_such_tool", {}));
		expect(unknown.code).toBe(ErrorCode.InvalidParams);
		const badArguments = await protocolError(callAsTask(client, "calculator", { expression: 42 }));
		expect(badArguments.code).toBe(ErrorCode.InvalidParams);
		expect(badArguments.message).toContain("expression");
		const missing = await protocolError(client.experimental.tasks.getTask("no-such-task"));
		expect(missing.code).toBe(ErrorCode.InvalidParams);
	});

	it("needs tools:execute to create a task, as for a direct call", async () => {
		const res = await http(gateway.url, "POST", "/api/v1/keys", {
			tenant,
			body: { tenant_id: tenant, scopes: ["tools:read"] }
		});
		const client = new Client({ name: "reader", version: "1.0.0" });
		clients.push(client);
		await client.connect(
			new StreamableHTTPClientTransport(new URL(`${gateway.url}/mcp`), {
				requestInit: { headers: { authorization: `Bearer ${res.body.api_key}` } }
			})
		);
		const refused = await protocolError(callAsTask(client, "calculator", { expression: "1" }));
		expect(refused.code).toBe(ErrorCode.InvalidRequest);
	});
});
