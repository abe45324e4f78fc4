import { BACKENDS } from "../support/backends";
import { http, type TestNode } from "../support/node";
import {
	UUID,
	newTenant,
	newTaskId,
	statuses,
	upstreamUrl,
	call,
	submit,
	accepted,
	read,
	waitFor,
	calculation,
	useStandIns,
	useTasksNode
} from "../support/tasks-api";

/** The async tasks API end to end over real HTTP (setup: test/support/tasks-api.ts): submitting, reading, client-chosen ids and refused submissions. */

useStandIns();

describe.each(BACKENDS)("tasks API on the $name backend", ({ redisUrl }) => {
	const ready = useTasksNode(redisUrl);
	let node: TestNode;
	let calculatorId: string;
	beforeAll(() => ({ node, calculatorId } = ready));

	describe("submitting and reading", () => {
		it("answers 202 pending and later reads the completed task as the full standard message", async () => {
			const tenant = newTenant();
			const res = await submit(
				node,
				tenant,
				calculation("2+3", {
					priority: 4,
					metadata: { session_id: "session-1", source: "workflow", global_task_id: "global-1" }
				}),
				{ "x-agent-id": "agent-7" }
			);
			expect(res.status).toBe(202);
			expect(res.body).toEqual({ task_id: expect.stringMatching(UUID), status: "pending" });
			const taskId = res.body.task_id as string;

			const task = await waitFor(node, tenant, taskId, "completed");
			expect(task).toEqual({
				task_id: taskId,
				tenant_id: tenant,
				created_at: expect.any(String),
				updated_at: expect.any(String),
				status: "completed",
				type: "tool_execution",
				priority: 4,
				metadata: {
					agent_id: "agent-7",
					session_id: "session-1",
					source: "workflow",
					global_task_id: "global-1",
					execution_id: expect.any(String)
				},
				payload: {
					tool_id: calculatorId,
					tool_name: "calculator",
					tool_type: "calculator",
					parameters: { expression: "2+3" },
					timeout_ms: 5000
				},
				attempts: 1,
				result: { value: 5 }
			});
			expect(new Date(String(task.created_at)).toISOString()).toBe(task.created_at);
			expect(new Date(task.updated_at).toISOString()).toBe(task.updated_at);
			expect(task.updated_at >= String(task.created_at)).toBe(true);
			expect((task.metadata as { execution_id: string }).execution_id).not.toBe("");
		});

		it("takes a tool by id, keeps a given execution_id and caps timeout_ms at the tool's", async () => {
			const tenant = newTenant();
			const taskId = await accepted(node, tenant, {
				payload: { tool_id: calculatorId, parameters: { expression: "6*7" }, timeout_ms: 60000 },
				metadata: { agent_id: "agent-b", execution_id: "exec-given" }
			});
			const task = await waitFor(node, tenant, taskId, "completed");
			expect(task).toMatchObject({
				priority: 0,
				metadata: { agent_id: "agent-b", execution_id: "exec-given" },
				payload: { tool_id: calculatorId, tool_name: "calculator", timeout_ms: 5000 },
				result: { value: 42 }
			});
			expect(task.error).toBeUndefined();
		});

		it("hides a task from another tenant and answers 404 for an unknown task", async () => {
			const tenant = newTenant();
			const taskId = await accepted(node, tenant, calculation("1+1"));
			await waitFor(node, tenant, taskId, "completed");
			const other = await read(node, newTenant(), taskId);
			expect(other.status).toBe(404);
			expect(other.body).toMatchObject({ code: 404, type: "NOT_FOUND" });
			expect((await read(node, tenant, newTaskId())).status).toBe(404);
		});
	});

	describe("client-chosen task_id", () => {
		it("treats a resubmitted task_id as the same task and runs it once", async () => {
			const tenant = newTenant();
			const taskId = newTaskId();
			const body = calculation("2+3", { task_id: taskId });
			const first = await Promise.all([1, 2, 3].map(() => submit(node, tenant, body)));
			expect(first.map(res => res.status)).toEqual([202, 202, 202]);
			for (const res of first)
				expect(res.body).toMatchObject({ task_id: taskId, status: expect.any(String) });

			await waitFor(node, tenant, taskId, "completed");
			// Again once it ran, even with another payload: the existing task, unchanged.
			const again = await submit(node, tenant, calculation("7*6", { task_id: taskId, priority: 9 }));
			expect(again.status).toBe(202);
			expect(again.body).toMatchObject({
				task_id: taskId,
				tenant_id: tenant,
				status: "completed",
				priority: 0,
				payload: { parameters: { expression: "2+3" } },
				result: { value: 5 },
				attempts: 1
			});

			const stats = await call(node, "GET", `/tools/${calculatorId}/stats`, tenant);
			expect(stats.status).toBe(200);
			expect(stats.body.calls).toBe(1);
		});

		it("answers 409 to another tenant reusing a task_id and leaves the task alone", async () => {
			const tenant = newTenant();
			const taskId = newTaskId();
			await accepted(node, tenant, calculation("1+2", { task_id: taskId }));
			const other = newTenant();
			const clash = await submit(node, other, calculation("9*9", { task_id: taskId }));
			expect(clash.status).toBe(409);
			expect(clash.body).toMatchObject({ code: 409, type: "CONFLICT" });
			const task = await waitFor(node, tenant, taskId, "completed");
			expect(task).toMatchObject({ tenant_id: tenant, result: { value: 3 } });
			expect((await read(node, other, taskId)).status).toBe(404);
		});

		it.each(["has space", "-leading-dash", "dots.not.allowed", "a".repeat(65), "ünicode", ""])(
			"answers 422 for the task_id %j and queues nothing",
			async taskId => {
				const tenant = newTenant();
				const res = await submit(node, tenant, calculation("1+1", { task_id: taskId }));
				expect(res.status).toBe(422);
				expect(res.body).toMatchObject({ code: 422, type: "VALIDATION_ERROR" });
				expect(JSON.stringify(res.body.data)).toContain("task_id");
				if (taskId && taskId.length <= 64) expect((await read(node, tenant, taskId)).status).toBe(404);
			}
		);
	});

	describe("refused submissions", () => {
		type Case = {
			status: number;
			type: string;
			field?: string | RegExp;
			body: (tenant: string) => Record<string, unknown>;
			headers?: Record<string, string>;
		};
		const calc = (extra: Record<string, unknown>) => () => calculation("1+1", extra);
		const badPriority = (priority: unknown): Case => ({
			status: 422,
			type: "VALIDATION_ERROR",
			field: "priority",
			body: calc({ priority })
		});
		const cases: Record<string, Case> = {
			"a tenant_id other than the caller's": {
				status: 403,
				type: "FORBIDDEN",
				body: () => calculation("1+1", { tenant_id: "somebody-else" })
			},
			"a metadata.agent_id other than the calling agent": {
				status: 403,
				type: "FORBIDDEN",
				body: calc({ metadata: { agent_id: "agent-2" } }),
				headers: { "x-agent-id": "agent-1" }
			},
			"an unknown tool_name": {
				status: 404,
				type: "NOT_FOUND",
				body: () => ({ payload: { tool_name: "no_such_tool", parameters: {} } })
			},
			"an unknown tool_id": {
				status: 404,
				type: "NOT_FOUND",
				body: () => ({ payload: { tool_id: "01a2c0ff-ee00-7000-8000-000000000000", parameters: {} } })
			},
			"a payload naming no tool": {
				status: 422,
				type: "VALIDATION_ERROR",
				body: () => ({ payload: { parameters: { expression: "1" } } })
			},
			"parameters of the wrong type": {
				status: 422,
				type: "VALIDATION_ERROR",
				field: /parameters\.expression$/,
				body: () => ({ payload: { tool_name: "calculator", parameters: { expression: 5 } } })
			},
			"a parameter the tool does not take": {
				status: 422,
				type: "VALIDATION_ERROR",
				field: /parameters\.extra$/,
				body: () => ({ payload: { tool_name: "calculator", parameters: { expression: "1", extra: 1 } } })
			},
			"a missing required parameter": {
				status: 422,
				type: "VALIDATION_ERROR",
				field: /parameters\.expression$/,
				body: () => ({ payload: { tool_name: "calculator", parameters: {} } })
			},
			"an unknown payload field": {
				status: 422,
				type: "VALIDATION_ERROR",
				body: () => ({ payload: { tool_name: "calculator", parameters: { expression: "1" }, script: "rm" } })
			},
			"a payload that is not an object": {
				status: 422,
				type: "VALIDATION_ERROR",
				field: "payload",
				body: () => ({ payload: "calculator" })
			},
			"no payload": { status: 422, type: "VALIDATION_ERROR", field: "payload", body: () => ({}) },
			"a payload timeout_ms over 300000": {
				status: 422,
				type: "VALIDATION_ERROR",
				body: () => ({
					payload: { tool_name: "calculator", parameters: { expression: "1" }, timeout_ms: 300001 }
				})
			},
			"priority 10": badPriority(10),
			"priority -1": badPriority(-1),
			"priority 2.5": badPriority(2.5),
			'priority "high"': badPriority("high"),
			"an unknown type": {
				status: 422,
				type: "VALIDATION_ERROR",
				field: "type",
				body: calc({ type: "shell_command" })
			},
			"an unknown metadata.source": {
				status: 422,
				type: "VALIDATION_ERROR",
				field: "metadata.source",
				body: calc({ metadata: { source: "robot" } })
			},
			"a callback_url that is not a URL": {
				status: 422,
				type: "VALIDATION_ERROR",
				field: "callback_url",
				body: calc({ callback_url: "not a url" })
			},
			"an ftp callback_url": {
				status: 422,
				type: "VALIDATION_ERROR",
				field: "callback_url",
				body: calc({ callback_url: "ftp://127.0.0.2/hook" })
			},
			"a callback_url with credentials": {
				status: 422,
				type: "VALIDATION_ERROR",
				field: "callback_url",
				body: () => calculation("1+1", { callback_url: upstreamUrl("/hook/x").replace("//", "//user:pw@") })
			}
		};

		it.each(Object.keys(cases))("refuses %s and queues nothing", async name => {
			const { status, type, field, body, headers } = cases[name];
			const tenant = newTenant();
			const taskId = newTaskId();
			const res = await submit(node, tenant, { ...body(tenant), task_id: taskId }, headers);
			expect(res.status).toBe(status);
			expect(res.body).toMatchObject({
				code: status,
				type,
				name: expect.any(String),
				message: expect.any(String)
			});
			if (field !== undefined) {
				const fields = (res.body.data as { field: string }[]).map(problem => problem.field);
				expect(fields).toContainEqual(typeof field === "string" ? field : expect.stringMatching(field));
			}
			expect((await read(node, tenant, taskId)).status).toBe(404);
		});

		it("names the unknown payload field in the 422", async () => {
			const res = await submit(node, newTenant(), {
				payload: { tool_name: "calculator", parameters: { expression: "1" }, script: "rm" }
			});
			expect(res.status).toBe(422);
			expect(JSON.stringify(res.body.data)).toContain("script");
		});

		// No input makes the service answer 5xx. These pass the "url" rule of the
		// params validator but not the WHATWG URL parser.
		it.each(["http://[", "http://a b", "http://127.0.0.2:99999/hook"])(
			"refuses the unparsable callback_url %j with 422, not 500",
			async callbackUrl => {
				const tenant = newTenant();
				const taskId = newTaskId();
				const res = await http(node.url, "POST", "/api/v1/internal/tasks", {
					tenant,
					body: calculation("1+1", { task_id: taskId, callback_url: callbackUrl })
				});
				expect(res.status).toBe(422);
				expect((await read(node, tenant, taskId)).status).toBe(404);
			}
		);
	});
});

describe("every answer of this file", () => {
	it("was below 500", () => {
		expect(statuses.length).toBeGreaterThan(0);
		expect(statuses.filter(status => status >= 500)).toEqual([]);
	});
});
