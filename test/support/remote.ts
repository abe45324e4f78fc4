import net from "node:net";
import type { ServerResponse } from "node:http";

import { eventually } from "./eventually";
import { http, startNode, type HttpResult, type TestNode } from "./node";
import {
	closedPort as freePort,
	json as sendJson,
	redirect,
	streamPaced,
	Upstream,
	type PacedStream
} from "./upstream";

export { redirect };

/**
 * The setup of the execute-remote suites: tools that call out (external_api, rag_query, rag_search),
 * end to end over real HTTP: registered with POST /api/v1/tools, run with POST /api/v1/internal/execute.
 *
 * Allowed upstreams listen on 127.0.0.2 (Linux routes all of 127/8 to loopback), opened with
 * `outboundAllowHosts`. Victim listeners on 127.0.0.1 and [::1], on the upstream's port, count
 * connections and must never get one. Non-loopback targets (10.x, 169.254.x, ...) must be refused before
 * any connection: as a safety net the suites also patch net.Socket#connect so that nothing they do can
 * leave the machine; a blocked attempt is recorded and fails the test.
 */

export type Reply = (res: ServerResponse) => void;

/** How long /slow (and a slow orchestrator) takes to answer: a call back sooner was cut off. */
export const SLOW_MS = 10_000;
export const BIG_BYTES = 3 * 1024 * 1024;
export const SECRET = `sk-live-${process.pid}-c0ffee-do-not-leak`;

export let port: number;
export let upstream: Upstream;
let victims: Upstream[] = [];
const victimConnections = () => victims.reduce((sum, victim) => sum + victim.connections, 0);
/** Counters as they were when the running test started. */
let baseline = { victimConnections: 0, blockedConnects: 0 };
export let orchestrator: Upstream;
export let orchestratorUrl: string;
export let closedPort: number;
export let node: TestNode;

/** Paths of /flip/... upstreams that answer 200 instead of 500. */
export const healthy = new Set<string>();
/** What the upstream saw of the last /big response. */
export let big: PacedStream | undefined;
/** Every status the gateways answered in a suite: none may be 5xx. */
const statuses: number[] = [];

let tenantCounter = 0;
export const newTenant = (): string => `remote-${process.pid}-${++tenantCounter}`;
let nameCounter = 0;
export const newName = (stem: string): string => `${stem}_${++nameCounter}`;

// ---------------------------------------------------------------------------------------------------
// Safety net: no connection to anything but loopback, whatever the product does.

type Connect = (this: net.Socket, ...args: unknown[]) => net.Socket;
const realConnect = net.Socket.prototype.connect as unknown as Connect;
const blockedConnects: string[] = [];

function destinationOf(args: unknown[]): string {
	// net.connect() hands Socket#connect its normalized [options, callback] array.
	const first = Array.isArray(args[0]) ? (args[0] as unknown[])[0] : args[0];
	if (first !== null && typeof first === "object") {
		const options = first as { host?: string; path?: string };
		return options.path ? "ipc" : (options.host ?? "localhost");
	}
	if (typeof first === "string") return "ipc";
	return typeof args[1] === "string" ? args[1] : "localhost";
}

const isLoopback = (host: string) =>
	host === "ipc" || host === "localhost" || host === "::1" || (net.isIPv4(host) && host.startsWith("127."));

function guardedConnect(this: net.Socket, ...args: unknown[]): net.Socket {
	const host = destinationOf(args);
	if (isLoopback(host)) return realConnect.apply(this, args);
	blockedConnects.push(host);
	process.nextTick(() => this.destroy(new Error(`test safety net: connection to ${host} blocked`)));
	return this;
}

// ---------------------------------------------------------------------------------------------------
// Local servers.

export const json =
	(status: number, payload: unknown): Reply =>
	res =>
		sendJson(res, status, payload);

/** What the orchestrator stand-in answers until the next test. */
export function answerOrchestratorWith(reply: Reply): void {
	orchestrator.reply = (_req, res) => reply(res);
}

function routeUpstream(path: string, res: ServerResponse): void {
	if (path.startsWith("/echo")) {
		json(200, { data: { forecast: { summary: "sunny", high: 28 } }, other: "ignored" })(res);
	} else if (path === "/text") {
		res.writeHead(200, { "Content-Type": "text/plain" });
		res.end("plain hello");
	} else if (path.startsWith("/fail")) json(500, { error: "boom" })(res);
	else if (path.startsWith("/flip/")) {
		if (healthy.has(path)) json(200, { recovered: true })(res);
		else json(500, { error: "down" })(res);
	} else if (path === "/slow") {
		const timer = setTimeout(() => json(200, { late: true })(res), SLOW_MS);
		res.on("close", () => clearTimeout(timer));
	} else if (path.startsWith("/delay/")) {
		const timer = setTimeout(() => json(200, { waited: true })(res), Number(path.split("/")[2]));
		res.on("close", () => clearTimeout(timer));
	} else if (path === "/big") big = streamPaced(res, BIG_BYTES, "application/json", 2);
	else if (path === "/declared-big") {
		res.writeHead(200, { "Content-Type": "application/json", "Content-Length": String(BIG_BYTES) });
		res.write("[");
	} else if (path === "/to-victim") redirect(res, 302, `http://127.0.0.1:${port}/`);
	else if (path === "/to-victim-v6") redirect(res, 307, `http://[::1]:${port}/`);
	else if (path === "/to-localhost") redirect(res, 301, `http://localhost:${port}/`);
	else if (path === "/to-decimal") redirect(res, 308, `http://2130706433:${port}/`);
	else if (path === "/to-metadata") redirect(res, 302, "http://169.254.169.254/latest/meta-data/");
	else if (path === "/to-file") redirect(res, 302, "file:///etc/passwd");
	else json(404, { error: "no such path" })(res);
}

/** The victims (127.0.0.1 and ::1) and the allowed upstream (127.0.0.2) share one port P. */
async function startUpstreamAndVictims(): Promise<void> {
	for (let attempt = 1; ; attempt++) {
		const v4 = await Upstream.victim("127.0.0.1");
		port = v4.port;
		const started: Upstream[] = [v4];
		try {
			started.push(await Upstream.victim("::1", port));
			upstream = await Upstream.start((req, res) => routeUpstream(req.path, res), {
				host: "127.0.0.2",
				port
			});
			victims = started;
			return;
		} catch (err) {
			await Promise.all(started.map(server => server.close()));
			if (attempt >= 5) throw err;
		}
	}
}

// ---------------------------------------------------------------------------------------------------
// REST helpers: every response passes through `call`, which asserts it is not a 5xx.

export async function call(on: TestNode, method: string, path: string, tenant: string, body?: unknown) {
	const res: HttpResult = await http(on.url, method, `/api/v1${path}`, { tenant, body });
	statuses.push(res.status);
	expect(res.status).toBeLessThan(500);
	return res;
}

/**
 * Registers a tool and waits for its functional validation (external_api tools are probed at their
 * origin before they may run). The probe's own request to the upstream is left out of the record.
 */
export async function register(
	on: TestNode,
	tenant: string,
	definition: Record<string, unknown>,
	expected: "active" | "invalid" = "active"
) {
	const res = await call(on, "POST", "/tools", tenant, definition);
	expect(res.status).toBe(201);
	const settled = await eventually(async () => {
		const read = await call(on, "GET", `/tools/${res.body.id}`, tenant);
		expect(read.body.status).not.toBe("pending_validation");
		return read;
	});
	upstream.received = upstream.received.filter(r => r.path !== "/");
	expect(settled.body.status).toBe(expected);
	return settled;
}

export async function execute(on: TestNode, tenant: string, request: Record<string, unknown>) {
	const res = await call(on, "POST", "/internal/execute", tenant, request);
	expect(res.status).toBe(200);
	return res;
}

export const upstreamUrl = (path: string) => `http://127.0.0.2:${port}${path}`;

export const externalApi = (config: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({
	name: newName("remote_api"),
	description: "A tenant's HTTP API",
	type: "external_api",
	config,
	timeout_ms: 2000,
	...extra
});

/** Registers an external_api tool for `tenant` and runs it once with `parameters`. */
export async function registerAndRun(
	on: TestNode,
	tenant: string,
	config: Record<string, unknown>,
	parameters: Record<string, unknown> = {},
	extra: Record<string, unknown> = {}
) {
	const tool = await register(on, tenant, externalApi(config, extra));
	const res = await execute(on, tenant, { tool_id: tool.body.id, parameters });
	return { tool: tool.body, result: res.body };
}

export const upstreamPaths = (): string[] => upstream.received.map(r => r.path);
export const hitsOn = (path: string): number => upstream.hits(path);

/** Registers the hooks every execute-remote suite runs under: the stand-ins, one node, the safety net. */
export function useRemoteSetup(): void {
	beforeAll(async () => {
		net.Socket.prototype.connect = guardedConnect as unknown as typeof net.Socket.prototype.connect;
		await startUpstreamAndVictims();
		orchestrator = await Upstream.start(() => undefined);
		orchestratorUrl = orchestrator.url();
		closedPort = await freePort("127.0.0.2");
		node = await startNode({ settings: { outboundAllowHosts: ["127.0.0.2"], orchestratorUrl } });
	});

	afterAll(async () => {
		try {
			await node?.stop();
			await Promise.all([upstream, orchestrator, ...victims].filter(Boolean).map(server => server.close()));
		} finally {
			// Other test files may run in this worker next.
			net.Socket.prototype.connect = realConnect as unknown as typeof net.Socket.prototype.connect;
		}
		expect(statuses.length).toBeGreaterThan(0);
		expect(statuses.filter(status => status >= 500)).toEqual([]);
		expect(victimConnections()).toBe(0);
		expect(blockedConnects).toEqual([]);
	});

	beforeEach(() => {
		baseline = { victimConnections: victimConnections(), blockedConnects: blockedConnects.length };
		upstream.received = [];
		orchestrator.received = [];
		answerOrchestratorWith(json(200, { answer: "42", sources: [{ id: "doc-1", score: 0.9 }] }));
	});

	afterEach(() => {
		expect(victimConnections() - baseline.victimConnections).toBe(0);
		expect(blockedConnects.slice(baseline.blockedConnects)).toEqual([]);
	});
}
