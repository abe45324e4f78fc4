import { BACKENDS } from "../support/backends";
import { eventually, until } from "../support/eventually";
import { ManualClock } from "../support/manual-clock";
import { startNode, type TestNode } from "../support/node";
import {
	CALLBACKS,
	TASKS,
	newTenant,
	newKey,
	newTaskId,
	statuses,
	victim,
	hitsOn,
	upstreamUrl,
	call,
	accepted,
	read,
	waitFor,
	calculation,
	registerApi,
	registerRecorder,
	recorded,
	occupyWorker,
	callbacksTo,
	callbacksUnderWay,
	expectSigned,
	useStandIns,
	useTasksNode
} from "../support/tasks-api";

/** The async tasks API end to end over real HTTP (setup: test/support/tasks-api.ts): cancelling, priority, retries and callbacks. */

useStandIns();

describe.each(BACKENDS)("tasks API on the $name backend", ({ redisUrl }) => {
	const ready = useTasksNode(redisUrl);
	let node: TestNode;
	let calculatorId: string;
	beforeAll(() => ({ node, calculatorId } = ready));

	describe("cancelling", () => {
		it("cancels a pending task, which then never runs, and refuses a running or finished one", async () => {
			const tenant = newTenant();
			const key = newKey();
			const recorder = await registerRecorder(node, tenant, key);
			const hook = `/hook/${newKey()}`;
			const slowTask = await occupyWorker(node, tenant);

			const taskId = newTaskId();
			await accepted(node, tenant, {
				task_id: taskId,
				payload: { tool_id: recorder, parameters: { label: "cancelled" } },
				callback_url: upstreamUrl(hook)
			});
			expect((await read(node, tenant, taskId)).body.status).toBe("pending");

			// Another tenant cannot see it, so cannot cancel it; an unknown id is 404 too.
			const foreign = await call(node, "DELETE", `/internal/tasks/${taskId}`, newTenant());
			expect(foreign.status).toBe(404);
			expect(foreign.body).toMatchObject({ code: 404, type: "NOT_FOUND" });
			expect((await call(node, "DELETE", `/internal/tasks/${newTaskId()}`, tenant)).status).toBe(404);
			expect((await read(node, tenant, taskId)).body.status).toBe("pending");

			const running = await call(node, "DELETE", `/internal/tasks/${slowTask}`, tenant);
			expect(running.status).toBe(409);
			expect(running.body).toMatchObject({ code: 409, type: "CONFLICT", data: { status: "processing" } });

			const cancelled = await call(node, "DELETE", `/internal/tasks/${taskId}`, tenant);
			expect(cancelled.status).toBe(200);
			expect(cancelled.body).toMatchObject({ task_id: taskId, tenant_id: tenant, status: "cancelled" });
			expect((await read(node, tenant, taskId)).body).toMatchObject({ status: "cancelled", attempts: 0 });

			await waitFor(node, tenant, slowTask, "completed", 5000);
			const finished = await call(node, "DELETE", `/internal/tasks/${slowTask}`, tenant);
			expect(finished.status).toBe(409);
			expect(finished.body).toMatchObject({ code: 409, type: "CONFLICT", data: { status: "completed" } });
			expect((await read(node, tenant, slowTask)).body.status).toBe("completed");

			// A task submitted after it has run by now: the worker went past the cancelled one.
			const after = await accepted(node, tenant, {
				payload: { tool_id: recorder, parameters: { label: "after" } }
			});
			await waitFor(node, tenant, after, "completed");
			expect(recorded(key)).toEqual(["after"]);
			expect((await read(node, tenant, taskId)).body.status).toBe("cancelled");

			// The cancelled task is final, so its callback gets it.
			const [delivery] = await eventually(async () => {
				expect(callbacksTo(hook)).toHaveLength(1);
				return callbacksTo(hook);
			});
			expect(JSON.parse(delivery.body)).toMatchObject({ task_id: taskId, status: "cancelled" });
			expectSigned(delivery);
		});

		// DELETE answers 200 "only while pending, 409 otherwise".
		it("answers 409 to cancelling an already cancelled task and sends its callback once", async () => {
			const tenant = newTenant();
			const hook = `/hook/${newKey()}`;
			const slowTask = await occupyWorker(node, tenant);
			const taskId = await accepted(node, tenant, calculation("1+1", { callback_url: upstreamUrl(hook) }));
			expect((await call(node, "DELETE", `/internal/tasks/${taskId}`, tenant)).status).toBe(200);
			await eventually(async () => expect(callbacksTo(hook)).toHaveLength(1));

			const twice = await call(node, "DELETE", `/internal/tasks/${taskId}`, tenant);
			// Frees the worker (and leaves time for a second callback) before asserting.
			await waitFor(node, tenant, slowTask, "completed", 5000);
			expect({ status: twice.status, type: twice.body.type, deliveries: callbacksTo(hook).length }).toEqual({
				status: 409,
				type: "CONFLICT",
				deliveries: 1
			});
			expect((await read(node, tenant, taskId)).body.status).toBe("cancelled");
		});
	});

	describe("priority", () => {
		it("runs a priority 9 task before the priority 0 tasks submitted earlier by the tenant", async () => {
			const tenant = newTenant();
			const key = newKey();
			const recorder = await registerRecorder(node, tenant, key);
			await occupyWorker(node, tenant);

			const submitLabel = (label: string, priority: number) =>
				accepted(node, tenant, { priority, payload: { tool_id: recorder, parameters: { label } } });
			const low: string[] = [];
			for (const label of ["low-1", "low-2", "low-3"]) low.push(await submitLabel(label, 0));
			const urgent = await submitLabel("urgent", 9);
			for (const id of [...low, urgent]) expect((await read(node, tenant, id)).body.status).toBe("pending");

			const done = [];
			for (const id of [urgent, ...low]) done.push(await waitFor(node, tenant, id, "completed", 8000));
			expect(recorded(key)).toEqual(["urgent", "low-1", "low-2", "low-3"]);
			const finishedAt = done.map(task => task.updated_at);
			expect([...finishedAt].sort()).toEqual(finishedAt);
			expect(done.map(task => task.priority)).toEqual([9, 0, 0, 0]);
		});
	});

	describe("retries", () => {
		it("retries an upstream_error with backoff until the upstream recovers", async () => {
			const tenant = newTenant();
			const path = `/flaky/${newKey()}`;
			const tool = await registerApi(node, tenant, upstreamUrl(path));
			const started = Date.now();
			const taskId = await accepted(node, tenant, { payload: { tool_id: tool } });
			const task = await waitFor(node, tenant, taskId);
			expect(task).toMatchObject({
				status: "completed",
				attempts: 3,
				result: { status: 200, data: { recovered: true } }
			});
			expect(task.error).toBeUndefined();
			expect(hitsOn(path)).toBe(3);
			// Backoff of retryBaseDelayMs, then twice that, before the 2nd and 3rd attempts.
			expect(Date.now() - started).toBeGreaterThanOrEqual(300);
		});

		it("does not retry a tool_error", async () => {
			const tenant = newTenant();
			const taskId = await accepted(node, tenant, calculation("import({})"));
			const task = await waitFor(node, tenant, taskId);
			expect(task).toMatchObject({ status: "failed", attempts: 1, error: { type: "tool_error" } });
			expect((task.error as { message: string }).message).toMatch(/import/);
			expect(task.result).toBeUndefined();
			// "failed" is final: a retried attempt would have put it back to "pending" instead.
			expect((await read(node, tenant, taskId)).body).toMatchObject({ status: "failed", attempts: 1 });
			const stats = await call(node, "GET", `/tools/${calculatorId}/stats`, tenant);
			expect(stats.body.calls).toBe(1);
		});

		it("fails with upstream_error after maxRetries + 1 attempts when the upstream stays down", async () => {
			const tenant = newTenant();
			const path = `/down/${newKey()}`;
			const tool = await registerApi(node, tenant, upstreamUrl(path));
			const taskId = await accepted(node, tenant, { payload: { tool_id: tool } });
			const task = await waitFor(node, tenant, taskId);
			expect(task).toMatchObject({
				status: "failed",
				attempts: TASKS.maxRetries + 1,
				error: { type: "upstream_error", message: "upstream answered 503" }
			});
			expect(task.result).toBeUndefined();
			// Each attempt's request came before its outcome, and "failed" is final: no attempt is left.
			expect(hitsOn(path)).toBe(TASKS.maxRetries + 1);
		});

		it("retries a timed-out attempt and fails with timeout after maxRetries + 1 attempts", async () => {
			const tenant = newTenant();
			const path = `/slow/1500/${newKey()}`;
			const tool = await registerApi(node, tenant, upstreamUrl(path), { timeout_ms: 150 });
			const taskId = await accepted(node, tenant, { payload: { tool_id: tool } });
			const task = await waitFor(node, tenant, taskId);
			expect(task).toMatchObject({
				status: "failed",
				attempts: TASKS.maxRetries + 1,
				error: { type: "timeout" }
			});
			expect(hitsOn(path)).toBe(TASKS.maxRetries + 1);
		});
	});

	describe("callbacks", () => {
		it("POSTs the finished task, signed with the callback secret, to an allowed callback_url", async () => {
			const tenant = newTenant();
			const hook = `/hook/${newKey()}`;
			const taskId = await accepted(node, tenant, calculation("2+3", { callback_url: upstreamUrl(hook) }));
			const task = await waitFor(node, tenant, taskId, "completed");
			const [delivery] = await eventually(async () => {
				expect(callbacksTo(hook)).toHaveLength(1);
				return callbacksTo(hook);
			});
			expect(delivery.method).toBe("POST");
			expect(delivery.headers["content-type"]).toMatch(/^application\/json/);
			expect(JSON.parse(delivery.body)).toEqual(task);
			expect(task).toMatchObject({ callback_url: upstreamUrl(hook), result: { value: 5 } });
			expectSigned(delivery);
			// Delivered: nothing is under way that could POST it again.
			await until("the callback delivery to end", () => callbacksUnderWay(node) === 0, 5000);
			expect(callbacksTo(hook)).toHaveLength(1);
		});

		it("POSTs a failed task too", async () => {
			const tenant = newTenant();
			const hook = `/hook/${newKey()}`;
			const taskId = await accepted(node, tenant, calculation("1/", { callback_url: upstreamUrl(hook) }));
			await waitFor(node, tenant, taskId, "failed");
			const [delivery] = await eventually(async () => {
				expect(callbacksTo(hook)).toHaveLength(1);
				return callbacksTo(hook);
			});
			expect(JSON.parse(delivery.body)).toMatchObject({
				task_id: taskId,
				status: "failed",
				error: { type: "tool_error" }
			});
			expectSigned(delivery);
		});

		it("delivers again after 5xx answers until the receiver takes it", async () => {
			const tenant = newTenant();
			const hook = `/hook-flaky/${newKey()}`;
			const taskId = await accepted(node, tenant, calculation("2*21", { callback_url: upstreamUrl(hook) }));
			await waitFor(node, tenant, taskId, "completed");
			const deliveries = await eventually(async () => {
				expect(callbacksTo(hook)).toHaveLength(3);
				return callbacksTo(hook);
			});
			for (const delivery of deliveries) {
				expect(JSON.parse(delivery.body)).toMatchObject({
					task_id: taskId,
					status: "completed",
					result: { value: 42 }
				});
				expectSigned(delivery);
			}
			await until("the callback delivery to end", () => callbacksUnderWay(node) === 0, 5000);
			expect(callbacksTo(hook)).toHaveLength(3);
		});

		it("never connects to a callback_url on a loopback address that is not allowed", async () => {
			const tenant = newTenant();
			const before = victim.connections;
			const callbackUrl = victim.url("/hook");
			const taskId = await accepted(node, tenant, calculation("2+3", { callback_url: callbackUrl }));
			const task = await waitFor(node, tenant, taskId);
			expect(task).toMatchObject({ status: "completed", result: { value: 5 }, callback_url: callbackUrl });
			// The one worker finished that task, its callback started, before it took the next one.
			await waitFor(node, tenant, await accepted(node, tenant, calculation("1+1")), "completed");
			await until("the callback delivery to end", () => callbacksUnderWay(node) === 0, 5000);
			expect(victim.connections - before).toBe(0);
			expect((await read(node, tenant, taskId)).body.status).toBe("completed");
		});
	});
});

describe("a node that stops", () => {
	it("stops retrying the callbacks it was delivering", async () => {
		const hook = `/down/${newKey()}`;
		const callbacks = { ...CALLBACKS, attempts: 5, baseDelayMs: 200 };
		const clock = new ManualClock();
		const node = await startNode({
			settings: { outboundAllowHosts: ["127.0.0.2"], tasks: TASKS, callbacks, clock }
		});
		try {
			const tenant = newTenant();
			// The datetime tool needs no worker threads: the node runs it at once.
			await accepted(node, tenant, {
				payload: { tool_name: "datetime", parameters: { operation: "now" } },
				callback_url: upstreamUrl(hook)
			});
			await eventually(async () => expect(callbacksTo(hook)).toHaveLength(1));
		} finally {
			await node.stop();
		}
		const afterStop = callbacksTo(hook).length;
		// The stop waited for the delivery to give up; past every backoff left (200 + 400 + 800 + 1600 ms)
		// nothing is left to fire.
		await clock.advance(3000);
		expect(clock.pending).toBe(0);
		expect(callbacksTo(hook)).toHaveLength(afterStop);
	});
});

describe("every answer of this file", () => {
	it("was below 500", () => {
		expect(statuses.length).toBeGreaterThan(0);
		expect(statuses.filter(status => status >= 500)).toEqual([]);
	});
});
