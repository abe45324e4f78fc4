import { createHmac, randomUUID } from "node:crypto";
import { once } from "node:events";
import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { setTimeout as delay } from "node:timers/promises";

import { BACKENDS, dropPrefix, uniquePrefix } from "../support/backends";
import { eventually } from "../support/eventually";
import { http, SERVICE_TOKEN, startNode, type HttpResult, type TestNode } from "../support/node";

/**
 * The async tasks API end to end over real HTTP: POST, GET and DELETE
 * /api/v1/internal/tasks on an embedded node per store backend.
 *
 * The node runs ONE task worker (`tasks.concurrency: 1`), so a slow task holds the queue still while a
 * test submits, reads, cancels or reorders the tasks behind it. Upstreams and callback receivers listen
 * on 127.0.0.2, opened with `outboundAllowHosts`; a listener on 127.0.0.1 (not allowed) counts
 * connections and must never get one.
 */

interface Received {
	method: string;
	path: string;
	query: URLSearchParams;
	headers: IncomingHttpHeaders;
	body: string;
}

interface Task {
	task_id: string;
	status: string;
	updated_at: string;
	attempts: number;
	[field: string]: unknown;
}

const CALLBACK_SECRET = `callback-secret-${process.pid}`;
const SLOW_MS = 1000;
const TASKS = {
	concurrency: 1,
	leaseMs: 5000,
	reapIntervalMs: 50,
	maxDeliveries: 5,
	pollIntervalMs: 100,
	maxRetries: 2,
	retryBaseDelayMs: 100,
	retryMaxDelayMs: 1000,
	retentionS: 600
};
const CALLBACKS = { secret: CALLBACK_SECRET, attempts: 4, baseDelayMs: 50, timeoutMs: 2000 };
const FINAL = ["completed", "failed", "cancelled"];
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

let upstream: Server;
let upstreamPort: number;
let received: Received[] = [];
let victim: Server;
let victimPort: number;
let victimConnections = 0;
/** Every status the gateway answered in this file. */
const statuses: number[] = [];

let counter = 0;
const newTenant = () => `tasks-${process.pid}-${++counter}`;
const newKey = () => `k${++counter}-${randomUUID().slice(0, 8)}`;
const newTaskId = () => `task-${randomUUID()}`;

// ---------------------------------------------------------------------------------------------------
// Local servers.

const json = (res: ServerResponse, status: number, payload: unknown) => {
	res.writeHead(status, { "Content-Type": "application/json" });
	res.end(JSON.stringify(payload));
};

const hitsOn = (path: string) => received.filter(r => r.path === path).length;

/**
 * Paths of the allowed upstream (the first segment picks the behaviour, the rest keeps tests apart):
 * `/` answers the registration probe, `/slow/<ms>/..` waits, `/record/..` echoes `?label=`,
 * `/flaky/..` answers 503 twice then 200, `/down/..` always 503, `/hook/..` takes callbacks with 200,
 * `/hook-flaky/..` answers 500 twice then 200.
 */
function reply(req: Received, res: ServerResponse): void {
	const [, kind, arg] = req.path.split("/");
	const hits = hitsOn(req.path);
	if (kind === "") json(res, 200, { ok: true });
	else if (kind === "slow") {
		const timer = setTimeout(() => json(res, 200, { waited: Number(arg) }), Number(arg));
		res.on("close", () => clearTimeout(timer));
	} else if (kind === "record") json(res, 200, { label: req.query.get("label") });
	else if (kind === "flaky") {
		if (hits <= 2) json(res, 503, { error: "unavailable" });
		else json(res, 200, { recovered: true });
	} else if (kind === "down") json(res, 503, { error: "unavailable" });
	else if (kind === "hook") json(res, 200, { received: true });
	else if (kind === "hook-flaky") {
		if (hits <= 2) json(res, 500, { error: "boom" });
		else json(res, 200, { received: true });
	} else json(res, 404, { error: "no such path" });
}

function recordingServer(): Server {
	return createServer((req, res) => {
		const chunks: Buffer[] = [];
		req.on("data", (chunk: Buffer) => chunks.push(chunk));
		req.on("end", () => {
			const url = new URL(req.url ?? "/", "http://upstream");
			const entry: Received = {
				method: req.method ?? "",
				path: url.pathname,
				query: url.searchParams,
				headers: req.headers,
				body: Buffer.concat(chunks).toString("utf8")
			};
			received.push(entry);
			reply(entry, res);
		});
	});
}

async function listen(server: Server, host: string): Promise<number> {
	await new Promise<void>((resolve, reject) => {
		server.once("error", reject);
		server.listen(0, host, () => {
			server.off("error", reject);
			resolve();
		});
	});
	return (server.address() as AddressInfo).port;
}

async function shut(server: Server | undefined): Promise<void> {
	if (!server?.listening) return;
	server.closeAllConnections();
	server.close();
	await once(server, "close");
}

const upstreamUrl = (path: string) => `http://127.0.0.2:${upstreamPort}${path}`;

beforeAll(async () => {
	upstream = recordingServer();
	upstreamPort = await listen(upstream, "127.0.0.2");
	victim = createServer((_req, res) => res.end("you should not be here"));
	victim.on("connection", () => victimConnections++);
	victimPort = await listen(victim, "127.0.0.1");
});

afterAll(async () => {
	await Promise.all([shut(upstream), shut(victim)]);
});

beforeEach(() => {
	received = [];
});

// ---------------------------------------------------------------------------------------------------
// REST helpers.

/** A call to /api/v1 as the service token for `tenant`; no answer may be a 5xx. */
async function call(
	on: TestNode,
	method: string,
	path: string,
	tenant: string,
	body?: unknown,
	headers?: Record<string, string>
): Promise<HttpResult> {
	const res = await http(on.url, method, `/api/v1${path}`, { tenant, body, headers });
	statuses.push(res.status);
	if (res.status >= 500)
		throw new Error(`${method} ${path} answered ${res.status}: ${JSON.stringify(res.body)}`);
	return res;
}

type Body = Record<string, unknown>;

const submit = (on: TestNode, tenant: string, body: Body, headers?: Record<string, string>) =>
	call(on, "POST", "/internal/tasks", tenant, body, headers);

/** Submits a task that must be accepted, and returns its id. */
async function accepted(on: TestNode, tenant: string, body: Record<string, unknown>): Promise<string> {
	const res = await submit(on, tenant, body);
	expect(res.status).toBe(202);
	expect(res.body).toEqual({ task_id: expect.any(String), status: "pending" });
	return res.body.task_id as string;
}

const read = (on: TestNode, tenant: string, taskId: string) =>
	call(on, "GET", `/internal/tasks/${encodeURIComponent(taskId)}`, tenant);

/** Waits until the task is in `status` (any final status when omitted) and returns it. */
async function waitFor(on: TestNode, tenant: string, taskId: string, status?: string, timeoutMs = 10000) {
	return eventually(async () => {
		const res = await read(on, tenant, taskId);
		expect(res.status).toBe(200);
		if (status) expect(res.body.status).toBe(status);
		else expect(FINAL).toContain(res.body.status);
		return res.body as Task;
	}, timeoutMs);
}

const calculation = (expression: string, extra: Record<string, unknown> = {}) => ({
	payload: { tool_name: "calculator", parameters: { expression } },
	...extra
});

/** Registers an external_api tool and waits until its probe made it active. */
async function registerApi(
	on: TestNode,
	tenant: string,
	url: string,
	extra: Record<string, unknown> = {}
): Promise<string> {
	const res = await call(on, "POST", "/tools", tenant, {
		name: `api_${++counter}`,
		description: "A tenant's HTTP API",
		type: "external_api",
		config: { url, method: "GET" },
		timeout_ms: 2000,
		...extra
	});
	expect(res.status).toBe(201);
	await eventually(async () => {
		const tool = await call(on, "GET", `/tools/${res.body.id}`, tenant);
		expect(tool.body.status).toBe("active");
	});
	return res.body.id as string;
}

/** An external_api tool whose `label` parameter goes upstream as `?label=`: the upstream sees the order. */
const registerRecorder = (on: TestNode, tenant: string, key: string) =>
	registerApi(on, tenant, upstreamUrl(`/record/${key}`), {
		parameters: { type: "object", properties: { label: { type: "string" } }, required: ["label"] }
	});

const recorded = (key: string) =>
	received.filter(r => r.path === `/record/${key}`).map(r => r.query.get("label"));

/** Starts a task that occupies the only worker for SLOW_MS, and waits until it runs. */
async function occupyWorker(on: TestNode, tenant: string): Promise<string> {
	const url = upstreamUrl(`/slow/${SLOW_MS}/${newKey()}`);
	const slowTool = await registerApi(on, tenant, url, { timeout_ms: 3000 });
	const slowTask = await accepted(on, tenant, { payload: { tool_id: slowTool } });
	await waitFor(on, tenant, slowTask, "processing");
	return slowTask;
}

const callbacksTo = (path: string) => received.filter(r => r.path === path);

/** Checks `x-tool-registry-signature: t=<unix>,v1=<hex hmac-sha256(secret, "<t>.<body>")>`. */
function expectSigned(delivery: Received, secret = CALLBACK_SECRET): void {
	const header = delivery.headers["x-tool-registry-signature"];
	expect(header).toMatch(/^t=\d+,v1=[0-9a-f]{64}$/);
	const [, t, v1] = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(String(header))!;
	expect(Math.abs(Date.now() / 1000 - Number(t))).toBeLessThan(60);
	const sign = (key: string) => createHmac("sha256", key).update(`${t}.${delivery.body}`).digest("hex");
	expect(v1).toBe(sign(secret));
	// The configured callback secret, not the service token.
	expect(v1).not.toBe(sign(SERVICE_TOKEN));
}

// ---------------------------------------------------------------------------------------------------

describe.each(BACKENDS)("tasks API on the $name backend", ({ redisUrl }) => {
	let node: TestNode;
	let prefix: string;
	let calculatorId: string;

	beforeAll(async () => {
		prefix = uniquePrefix();
		node = await startNode({
			redisUrl,
			redisPrefix: prefix,
			settings: { outboundAllowHosts: ["127.0.0.2"], tasks: TASKS, callbacks: CALLBACKS }
		});
		const tenant = newTenant();
		const tools = await call(node, "GET", "/tools?type=calculator", tenant);
		const items = tools.body.items as { id: string; tenant_id: string }[];
		calculatorId = items.find(t => t.tenant_id === "*")!.id;
		// The calculator's worker threads start cold (slowly under ts-jest): warm them up first.
		await eventually(async () => {
			const res = await call(node, "POST", "/internal/execute", tenant, calculation("1+1").payload);
			expect(res.body.result).toEqual({ value: 2 });
		}, 20000);
	}, 30000);

	afterAll(async () => {
		await node?.stop();
		if (redisUrl) await dropPrefix(redisUrl, prefix);
	});

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
			await delay(300);
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
			await delay(300);
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
			await delay(300);
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
			await delay(400);
			expect(callbacksTo(hook)).toHaveLength(3);
		});

		it("never connects to a callback_url on a loopback address that is not allowed", async () => {
			const tenant = newTenant();
			const before = victimConnections;
			const callbackUrl = `http://127.0.0.1:${victimPort}/hook`;
			const taskId = await accepted(node, tenant, calculation("2+3", { callback_url: callbackUrl }));
			const task = await waitFor(node, tenant, taskId);
			expect(task).toMatchObject({ status: "completed", result: { value: 5 }, callback_url: callbackUrl });
			await delay(500);
			expect(victimConnections - before).toBe(0);
			expect((await read(node, tenant, taskId)).body.status).toBe("completed");
		});
	});
});

describe("every answer of this file", () => {
	it("was below 500", () => {
		expect(statuses.length).toBeGreaterThan(0);
		expect(statuses.filter(status => status >= 500)).toEqual([]);
	});
});
