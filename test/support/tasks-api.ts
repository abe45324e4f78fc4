import { createHmac, randomUUID } from "node:crypto";
import type { ServerResponse } from "node:http";

import { dropPrefix, uniquePrefix } from "./backends";
import { eventually } from "./eventually";
import { http, SERVICE_TOKEN, startNode, type HttpResult, type TestNode } from "./node";
import { json, Upstream, type Received } from "./upstream";

/**
 * The setup of the tasks API suites: an embedded node per store backend with ONE task worker
 * (`tasks.concurrency: 1`), so a slow task holds the queue still while a test submits, reads, cancels
 * or reorders the tasks behind it. Upstreams and callback receivers listen on 127.0.0.2, opened with
 * `outboundAllowHosts`; a listener on 127.0.0.1 (not allowed) counts connections and must never get one.
 */

export interface Task {
	task_id: string;
	status: string;
	updated_at: string;
	attempts: number;
	[field: string]: unknown;
}

export const CALLBACK_SECRET = `callback-secret-${process.pid}`;
export const SLOW_MS = 1000;
export const TASKS = {
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
export const CALLBACKS = { secret: CALLBACK_SECRET, attempts: 4, baseDelayMs: 50, timeoutMs: 2000 };
export const FINAL = ["completed", "failed", "cancelled"];
export const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** The allowed upstream and callback receiver (127.0.0.2), and a listener that must never be reached. */
export let upstream: Upstream;
export let victim: Upstream;
/** Every status the gateway answered in this file. */
export const statuses: number[] = [];

let counter = 0;
export const newTenant = () => `tasks-${process.pid}-${++counter}`;
export const newKey = () => `k${++counter}-${randomUUID().slice(0, 8)}`;
export const newTaskId = () => `task-${randomUUID()}`;

// ---------------------------------------------------------------------------------------------------
// Local servers.

export const hitsOn = (path: string): number => upstream.hits(path);

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

export const upstreamUrl = (path: string): string => upstream.url(path);

/** Starts the stand-ins for the suite and clears what they received before each test. */
export function useStandIns(): void {
	beforeAll(async () => {
		upstream = await Upstream.start(reply, { host: "127.0.0.2" });
		victim = await Upstream.victim("127.0.0.1");
	});

	afterAll(async () => {
		await Promise.all([upstream?.close(), victim?.close()]);
	});

	beforeEach(() => {
		upstream.received = [];
	});
}

/**
 * Starts the suite's node on `redisUrl` (memory when undefined) before its tests and stops it after;
 * the returned object holds the node and the global calculator's id once they are ready.
 */
export function useTasksNode(redisUrl: string | undefined): { node: TestNode; calculatorId: string } {
	const ready = {} as { node: TestNode; calculatorId: string };
	const prefix = uniquePrefix();

	beforeAll(async () => {
		ready.node = await startNode({
			redisUrl,
			redisPrefix: prefix,
			settings: { outboundAllowHosts: ["127.0.0.2"], tasks: TASKS, callbacks: CALLBACKS }
		});
		const tenant = newTenant();
		const tools = await call(ready.node, "GET", "/tools?type=calculator", tenant);
		const items = tools.body.items as { id: string; tenant_id: string }[];
		ready.calculatorId = items.find(t => t.tenant_id === "*")!.id;
		// The calculator's worker threads start cold (slowly under ts-jest): warm them up first.
		await eventually(async () => {
			const res = await call(ready.node, "POST", "/internal/execute", tenant, calculation("1+1").payload);
			expect(res.body.result).toEqual({ value: 2 });
		}, 20000);
	}, 30000);

	afterAll(async () => {
		await ready.node?.stop();
		if (redisUrl) await dropPrefix(redisUrl, prefix);
	});
	return ready;
}

// ---------------------------------------------------------------------------------------------------
// REST helpers.

/** A call to /api/v1 as the service token for `tenant`; no answer may be a 5xx. */
export async function call(
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

export const submit = (on: TestNode, tenant: string, body: Body, headers?: Record<string, string>) =>
	call(on, "POST", "/internal/tasks", tenant, body, headers);

/** Submits a task that must be accepted, and returns its id. */
export async function accepted(on: TestNode, tenant: string, body: Record<string, unknown>): Promise<string> {
	const res = await submit(on, tenant, body);
	expect(res.status).toBe(202);
	expect(res.body).toEqual({ task_id: expect.any(String), status: "pending" });
	return res.body.task_id as string;
}

export const read = (on: TestNode, tenant: string, taskId: string) =>
	call(on, "GET", `/internal/tasks/${encodeURIComponent(taskId)}`, tenant);

/** Waits until the task is in `status` (any final status when omitted) and returns it. */
export async function waitFor(
	on: TestNode,
	tenant: string,
	taskId: string,
	status?: string,
	timeoutMs = 10000
) {
	return eventually(async () => {
		const res = await read(on, tenant, taskId);
		expect(res.status).toBe(200);
		if (status) expect(res.body.status).toBe(status);
		else expect(FINAL).toContain(res.body.status);
		return res.body as Task;
	}, timeoutMs);
}

export const calculation = (expression: string, extra: Record<string, unknown> = {}) => ({
	payload: { tool_name: "calculator", parameters: { expression } },
	...extra
});

/** Registers an external_api tool and waits until its probe made it active. */
export async function registerApi(
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
export const registerRecorder = (on: TestNode, tenant: string, key: string) =>
	registerApi(on, tenant, upstreamUrl(`/record/${key}`), {
		parameters: { type: "object", properties: { label: { type: "string" } }, required: ["label"] }
	});

export const recorded = (key: string) =>
	upstream.received.filter(r => r.path === `/record/${key}`).map(r => r.query.get("label"));

/** Starts a task that occupies the only worker for SLOW_MS, and waits until it runs. */
export async function occupyWorker(on: TestNode, tenant: string): Promise<string> {
	const url = upstreamUrl(`/slow/${SLOW_MS}/${newKey()}`);
	const slowTool = await registerApi(on, tenant, url, { timeout_ms: 3000 });
	const slowTask = await accepted(on, tenant, { payload: { tool_id: slowTool } });
	await waitFor(on, tenant, slowTask, "processing");
	return slowTask;
}

export const callbacksTo = (path: string) => upstream.received.filter(r => r.path === path);

/** Callback deliveries a node still has under way (an attempt or the backoff before the next). */
export const callbacksUnderWay = (on: TestNode): number =>
	on.broker.services.reduce(
		(count, service) =>
			count + ((service as { callbacksInFlight?: Set<unknown> }).callbacksInFlight?.size ?? 0),
		0
	);

/** Checks `x-tool-registry-signature: t=<unix>,v1=<hex hmac-sha256(secret, "<t>.<body>")>`. */
export function expectSigned(delivery: Received, secret = CALLBACK_SECRET): void {
	const header = delivery.headers["x-tool-registry-signature"];
	expect(header).toMatch(/^t=\d+,v1=[0-9a-f]{64}$/);
	const [, t, v1] = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(String(header))!;
	expect(Math.abs(Date.now() / 1000 - Number(t))).toBeLessThan(60);
	const sign = (key: string) => createHmac("sha256", key).update(`${t}.${delivery.body}`).digest("hex");
	expect(v1).toBe(sign(secret));
	// The configured callback secret, not the service token.
	expect(v1).not.toBe(sign(SERVICE_TOKEN));
}
