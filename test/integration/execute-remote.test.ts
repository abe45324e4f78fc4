import { once } from "node:events";
import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from "node:http";
import net, { type AddressInfo } from "node:net";
import { setTimeout as delay } from "node:timers/promises";

import { eventually } from "../support/eventually";
import { http, SERVICE_TOKEN, startNode, type HttpResult, type TestNode } from "../support/node";

/**
 * Tools that call out (external_api, rag_query, rag_search), end to end over real HTTP: registered with
 * POST /api/v1/tools, run with POST /api/v1/internal/execute.
 *
 * Allowed upstreams listen on 127.0.0.2 (Linux routes all of 127/8 to loopback), opened with
 * `outboundAllowHosts`. Victim listeners on 127.0.0.1 and [::1], on the upstream's port, count
 * connections and must never get one. Non-loopback targets (10.x, 169.254.x, ...) must be refused before
 * any connection: as a safety net this file also patches net.Socket#connect so that nothing it does can
 * leave the machine; a blocked attempt is recorded and fails the test.
 */

interface Received {
	method: string;
	url: string;
	headers: IncomingHttpHeaders;
	body: string;
}

type Reply = (res: ServerResponse) => void;

const BIG_BYTES = 3 * 1024 * 1024;
const SECRET = `sk-live-${process.pid}-c0ffee-do-not-leak`;

let port: number;
let upstream: Server;
let victims: Server[] = [];
let victimConnections = 0;
/** Counters as they were when the running test started. */
let baseline = { victimConnections: 0, blockedConnects: 0 };
let orchestrator: Server;
let orchestratorUrl: string;
let orchestratorReply: Reply;
let closedPort: number;
let node: TestNode;

let upstreamReceived: Received[] = [];
let orchestratorReceived: Received[] = [];
/** Paths of /flip/... upstreams that answer 200 instead of 500. */
const healthy = new Set<string>();
/** What the upstream saw of the last /big response. */
let big: { written: number; completed: boolean; closed: Promise<unknown> } | undefined;
/** Every status the gateways answered in this file: none may be 5xx. */
const statuses: number[] = [];

let tenantCounter = 0;
const newTenant = () => `remote-${process.pid}-${++tenantCounter}`;
let nameCounter = 0;
const newName = (stem: string) => `${stem}_${++nameCounter}`;

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

const json =
	(status: number, payload: unknown): Reply =>
	res => {
		res.writeHead(status, { "Content-Type": "application/json; charset=utf-8" });
		res.end(JSON.stringify(payload));
	};

const redirect = (res: ServerResponse, status: number, location: string) => {
	res.writeHead(status, { Location: location });
	res.end();
};

async function streamBig(res: ServerResponse): Promise<void> {
	res.writeHead(200, { "Content-Type": "application/json" });
	const state = { written: 0, completed: false, closed: once(res, "close") };
	big = state;
	const chunk = Buffer.alloc(64 * 1024, "x");
	// Paced, so the test can see that the client hung up long before the end.
	while (state.written < BIG_BYTES && !res.destroyed) {
		res.write(chunk);
		state.written += chunk.length;
		await delay(2);
	}
	if (!res.destroyed) {
		state.completed = true;
		res.end();
	}
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
		const timer = setTimeout(() => json(200, { late: true })(res), 3000);
		res.on("close", () => clearTimeout(timer));
	} else if (path.startsWith("/delay/")) {
		const timer = setTimeout(() => json(200, { waited: true })(res), Number(path.split("/")[2]));
		res.on("close", () => clearTimeout(timer));
	} else if (path === "/big") void streamBig(res);
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

/** A server that records each request, then lets `reply` answer it. */
function recordingServer(log: () => Received[], reply: (req: Received, res: ServerResponse) => void): Server {
	return createServer((req, res) => {
		const chunks: Buffer[] = [];
		req.on("data", (chunk: Buffer) => chunks.push(chunk));
		req.on("end", () => {
			const received = {
				method: req.method ?? "",
				url: req.url ?? "",
				headers: req.headers,
				body: Buffer.concat(chunks).toString("utf8")
			};
			log().push(received);
			reply(received, res);
		});
	});
}

function victimServer(): Server {
	const server = createServer((_req, res) => res.end("you should not be here"));
	server.on("connection", () => victimConnections++);
	return server;
}

async function listen(server: Server, host: string, at = 0): Promise<number> {
	await new Promise<void>((resolve, reject) => {
		server.once("error", reject);
		server.listen(at, host, () => {
			server.off("error", reject);
			resolve();
		});
	});
	return (server.address() as AddressInfo).port;
}

async function shut(server: Server): Promise<void> {
	if (!server.listening) return;
	server.closeAllConnections();
	server.close();
	await once(server, "close");
}

/** The victims (127.0.0.1 and ::1) and the allowed upstream (127.0.0.2) share one port P. */
async function startUpstreamAndVictims(): Promise<void> {
	for (let attempt = 1; ; attempt++) {
		const v4 = victimServer();
		const v6 = victimServer();
		upstream = recordingServer(
			() => upstreamReceived,
			(req, res) => routeUpstream(new URL(req.url, "http://upstream").pathname, res)
		);
		port = await listen(v4, "127.0.0.1");
		try {
			await listen(upstream, "127.0.0.2", port);
			await listen(v6, "::1", port);
			victims = [v4, v6];
			return;
		} catch (err) {
			await Promise.all([shut(v4), shut(v6), shut(upstream)]);
			if (attempt >= 5) throw err;
		}
	}
}

// ---------------------------------------------------------------------------------------------------
// REST helpers: every response passes through `call`, which asserts it is not a 5xx.

async function call(on: TestNode, method: string, path: string, tenant: string, body?: unknown) {
	const res: HttpResult = await http(on.url, method, `/api/v1${path}`, { tenant, body });
	statuses.push(res.status);
	expect(res.status).toBeLessThan(500);
	return res;
}

/**
 * Registers a tool and waits for its functional validation (external_api tools are probed at their
 * origin before they may run). The probe's own request to the upstream is left out of the record.
 */
async function register(
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
	upstreamReceived = upstreamReceived.filter(r => new URL(r.url, "http://upstream").pathname !== "/");
	expect(settled.body.status).toBe(expected);
	return settled;
}

async function execute(on: TestNode, tenant: string, request: Record<string, unknown>) {
	const res = await call(on, "POST", "/internal/execute", tenant, request);
	expect(res.status).toBe(200);
	return res;
}

const upstreamUrl = (path: string) => `http://127.0.0.2:${port}${path}`;

const externalApi = (config: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({
	name: newName("remote_api"),
	description: "A tenant's HTTP API",
	type: "external_api",
	config,
	timeout_ms: 2000,
	...extra
});

/** Registers an external_api tool for `tenant` and runs it once with `parameters`. */
async function registerAndRun(
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

const upstreamPaths = () => upstreamReceived.map(r => new URL(r.url, "http://upstream").pathname);
const hitsOn = (path: string) => upstreamPaths().filter(p => p === path).length;

// ---------------------------------------------------------------------------------------------------

beforeAll(async () => {
	net.Socket.prototype.connect = guardedConnect as unknown as typeof net.Socket.prototype.connect;
	await startUpstreamAndVictims();
	orchestrator = recordingServer(
		() => orchestratorReceived,
		(_req, res) => orchestratorReply(res)
	);
	orchestratorUrl = `http://127.0.0.1:${await listen(orchestrator, "127.0.0.1")}`;
	const closed = createServer();
	closedPort = await listen(closed, "127.0.0.2");
	await shut(closed);
	node = await startNode({ settings: { outboundAllowHosts: ["127.0.0.2"], orchestratorUrl } });
});

afterAll(async () => {
	try {
		await node?.stop();
		await Promise.all([upstream, orchestrator, ...victims].filter(Boolean).map(shut));
	} finally {
		// Other test files may run in this worker next.
		net.Socket.prototype.connect = realConnect as unknown as typeof net.Socket.prototype.connect;
	}
	expect(statuses.length).toBeGreaterThan(0);
	expect(statuses.filter(status => status >= 500)).toEqual([]);
	expect(victimConnections).toBe(0);
	expect(blockedConnects).toEqual([]);
});

beforeEach(() => {
	baseline = { victimConnections, blockedConnects: blockedConnects.length };
	upstreamReceived = [];
	orchestratorReceived = [];
	orchestratorReply = json(200, { answer: "42", sources: [{ id: "doc-1", score: 0.9 }] });
});

afterEach(() => {
	expect(victimConnections - baseline.victimConnections).toBe(0);
	expect(blockedConnects.slice(baseline.blockedConnects)).toEqual([]);
});

describe("SSRF through HTTP: refused destinations", () => {
	// PORT is the victims' port, known only once they listen.
	it.each([
		"http://127.0.0.1:PORT/",
		"http://localhost:PORT/",
		"http://2130706433:PORT/",
		"http://0177.0.0.1:PORT/",
		"http://0x7f.0.0.1:PORT/",
		"http://127.1:PORT/",
		"http://[::1]:PORT/",
		"http://[::ffff:127.0.0.1]:PORT/",
		"http://[::ffff:7f00:1]:PORT/",
		"http://0.0.0.0:PORT/",
		"http://[::]:PORT/",
		"https://127.0.0.1:PORT/",
		"http://127.0.0.1:PORT/{{path}}",
		"http://127.0.0.1:PORT#@127.0.0.2:PORT/",
		"http://127.0.0.3:PORT/",
		"http://169.254.169.254/latest/meta-data/",
		"http://[::ffff:a9fe:a9fe]/latest/meta-data/",
		"http://[fd00:ec2::254]/latest/meta-data/",
		"http://10.0.0.1/",
		"http://192.168.1.1/",
		"http://172.16.0.1/",
		"http://100.64.0.1/",
		"http://[fe80::1]/",
		"http://[fc00::1]/"
	])("refuses %s before connecting: the probe marks the tool invalid and it never runs", async target => {
		const tenant = newTenant();
		const url = target.replaceAll("PORT", String(port));
		const tool = await register(node, tenant, externalApi({ url }), "invalid");
		expect(tool.body.validation).toMatchObject({
			valid: false,
			kind: "functional",
			errors: [{ field: "config.url", message: expect.stringMatching(/refused/) }]
		});
		const res = await call(node, "POST", "/internal/execute", tenant, {
			tool_id: tool.body.id,
			parameters: { path: "admin" }
		});
		expect(res.status).toBe(409);
		expect(res.body).toMatchObject({ type: "CONFLICT", data: { status: "invalid" } });
		expect(upstreamReceived).toEqual([]);
	});

	it.each(["/to-victim", "/to-victim-v6", "/to-localhost", "/to-decimal", "/to-metadata", "/to-file"])(
		"refuses a redirect from the allowed upstream (%s)",
		async path => {
			const { result } = await registerAndRun(node, newTenant(), { url: upstreamUrl(path) });
			expect(result).toMatchObject({ status: "failed", error: { type: "tool_error" } });
			expect(result.error.message).toMatch(/^outbound (address|URL) refused: /);
			// The allowed upstream answered the first hop; nothing else was reached.
			expect(upstreamPaths()).toEqual([path]);
		}
	);

	it.each([
		["file:///etc/passwd"],
		["gopher://127.0.0.1:PORT/_GET%20/"],
		["ftp://127.0.0.1:PORT/"],
		["dict://127.0.0.1:PORT/info"],
		["http://user:pass@127.0.0.2:PORT/echo"],
		["http://admin@127.0.0.1:PORT/"],
		["http://127.0.0.2:PORT@127.0.0.1:PORT/"],
		["http://{{host}}:PORT/"],
		["not a url"]
	])("refuses %s at registration with 422 and stores nothing", async target => {
		const tenant = newTenant();
		const url = target.replaceAll("PORT", String(port));
		const res = await call(node, "POST", "/tools", tenant, externalApi({ url }));
		expect(res.status).toBe(422);
		expect(res.body).toMatchObject({ code: 422, type: "VALIDATION_ERROR" });
		expect(res.body.data.map((problem: { field: string }) => problem.field)).toContain("config.url");
		const list = await call(node, "GET", "/tools?type=external_api", tenant);
		expect(list.body.items).toEqual([]);
	});
});

describe("external_api: allowed upstream", () => {
	const forecastParameters = {
		type: "object",
		properties: {
			city: { type: "string" },
			days: { type: "integer" },
			units: { type: "string" },
			user: { type: "string" }
		},
		required: ["city"]
	};
	const forecastConfig = () => ({
		url: upstreamUrl("/echo/forecast/{{city}}?days={{days}}"),
		method: "POST",
		headers: { "X-Api-Key": SECRET, "X-User": "agent-{{user}}" },
		query: { units: "{{units}}", source: "tool-registry" },
		body_template: { location: { city: "{{city}}" }, days: "{{days}}", note: "for {{user}}" },
		response_path: "data.forecast"
	});
	const forecastTool = () => externalApi(forecastConfig(), { parameters: forecastParameters });

	it("sends templated path, query, body and headers upstream and returns response_path", async () => {
		const tenant = newTenant();
		const tool = await register(node, tenant, forecastTool());
		const parameters = { city: "São Paulo/Centro", days: 3, units: "metric", user: "ana" };
		const res = await execute(node, tenant, { tool_id: tool.body.id, parameters, execution_id: "exec-1" });

		expect(res.body).toEqual({
			execution_id: "exec-1",
			tool_id: tool.body.id,
			tool_name: tool.body.name,
			status: "completed",
			result: { status: 200, data: { summary: "sunny", high: 28 } },
			execution_time_ms: expect.any(Number)
		});
		expect(upstreamReceived).toHaveLength(1);
		const [got] = upstreamReceived;
		const url = new URL(got.url, "http://upstream");
		expect(got.method).toBe("POST");
		expect(url.pathname).toBe("/echo/forecast/S%C3%A3o%20Paulo%2FCentro");
		expect([...url.searchParams]).toEqual([
			["days", "3"],
			["units", "metric"],
			["source", "tool-registry"]
		]);
		expect(got.headers["x-api-key"]).toBe(SECRET);
		expect(got.headers["x-user"]).toBe("agent-ana");
		expect(got.headers["content-type"]).toBe("application/json");
		expect(JSON.parse(got.body)).toEqual({
			location: { city: "São Paulo/Centro" },
			days: 3,
			note: "for ana"
		});
	});

	it("sends the secret header upstream but never shows it in any read of the tool", async () => {
		const tenant = newTenant();
		const created = await register(node, tenant, forecastTool());
		const id = created.body.id as string;
		const byId = await call(node, "GET", `/tools/${id}`, tenant);
		const list = await call(node, "GET", "/tools?type=external_api", tenant);
		expect(byId.status).toBe(200);
		expect(byId.body.config.headers).toEqual({ "X-Api-Key": "********", "X-User": "********" });
		expect(list.body.items.map((tool: { id: string }) => tool.id)).toEqual([id]);

		// An update that sends the masked read back keeps the stored secret.
		const patched = await call(node, "PATCH", `/tools/${id}`, tenant, {
			description: "renamed",
			config: byId.body.config
		});
		expect(patched.status).toBe(200);
		expect(patched.body.version).toBe(2);
		const run = await execute(node, tenant, { tool_id: id, parameters: { city: "Lima", user: "bo" } });
		expect(run.body.status).toBe("completed");
		expect(upstreamReceived.map(r => r.headers["x-api-key"])).toEqual([SECRET]);
		expect(upstreamReceived[0].headers["x-user"]).toBe("agent-bo");

		const reads = [created, byId, list, patched, run, await call(node, "GET", `/tools/${id}`, tenant)];
		for (const read of reads) expect(JSON.stringify(read.body)).not.toContain(SECRET);
	});

	it("keeps a masked secret only while the upstream origin is unchanged", async () => {
		const attackerReceived: Received[] = [];
		const attacker = recordingServer(
			() => attackerReceived,
			(_req, res) => json(200, { stolen: true })(res)
		);
		const attackerPort = await listen(attacker, "127.0.0.2");
		try {
			const tenant = newTenant();
			const created = await register(node, tenant, forecastTool());
			const id = created.body.id as string;
			const masked = (await call(node, "GET", `/tools/${id}`, tenant)).body.config;
			const elsewhere = `http://127.0.0.2:${attackerPort}/collect`;
			const refusals = [
				// The whole masked config sent back with another origin.
				{ config: { ...masked, url: elsewhere } },
				// Only the URL: the merge patch would keep the stored secret.
				{ config: { url: elsewhere } },
				// Another tool type: the secret would go wherever that type sends it.
				{ type: "mcp", config: { url: elsewhere } }
			];
			for (const patch of refusals) {
				const res = await call(node, "PATCH", `/tools/${id}`, tenant, patch);
				expect(res.status).toBe(422);
				expect(res.body.data).toEqual(
					expect.arrayContaining([
						{ field: "config.headers.X-Api-Key", message: "must be given again, since the upstream changed" }
					])
				);
			}
			expect((await call(node, "GET", `/tools/${id}`, tenant)).body.version).toBe(1);
			await execute(node, tenant, { tool_id: id, parameters: { city: "Lima" } });
			expect(attackerReceived).toEqual([]);

			// The same origin, another path: the masked secret still stands for the stored one.
			const samePlace = await call(node, "PATCH", `/tools/${id}`, tenant, {
				config: { ...masked, url: upstreamUrl("/echo/v2/{{city}}") }
			});
			expect(samePlace.status).toBe(200);
			// Another origin with every secret given again: accepted, and only the new secret goes there.
			const moved = await call(node, "PATCH", `/tools/${id}`, tenant, {
				config: { url: elsewhere, headers: { "X-Api-Key": "the-new-key", "X-User": "agent-{{user}}" } }
			});
			expect(moved.status).toBe(200);
			// A changed upstream is probed before it runs again.
			await eventually(async () => {
				const run = await call(node, "POST", "/internal/execute", tenant, {
					tool_id: id,
					parameters: { city: "Lima" }
				});
				expect(run.status).toBe(200);
			});
			// The probe of the new upstream, then the call: only ever the new key.
			const keys = new Set(attackerReceived.map(r => r.headers["x-api-key"]).filter(Boolean));
			expect([...keys]).toEqual(["the-new-key"]);
			expect(JSON.stringify(attackerReceived)).not.toContain(SECRET);
		} finally {
			await shut(attacker);
		}
	});

	it("sends unused parameters of a GET as the query and returns a text body as it is", async () => {
		const tenant = newTenant();
		const { result } = await registerAndRun(node, tenant, { url: upstreamUrl("/text") }, { q: "a&b", n: 2 });
		expect(result).toMatchObject({ status: "completed", result: { status: 200, data: "plain hello" } });
		expect(upstreamReceived.map(r => [r.method, r.url])).toEqual([["GET", "/text?q=a%26b&n=2"]]);
	});

	it("answers 422 for parameters that do not match the schema, before calling the upstream", async () => {
		const tenant = newTenant();
		const tool = await register(node, tenant, forecastTool());
		const res = await call(node, "POST", "/internal/execute", tenant, {
			tool_id: tool.body.id,
			parameters: { city: 7 }
		});
		expect(res.status).toBe(422);
		expect(res.body.type).toBe("VALIDATION_ERROR");
		expect(upstreamReceived).toEqual([]);
	});

	it("fails a header value with a line break instead of sending an injected header", async () => {
		const tenant = newTenant();
		const config = { url: upstreamUrl("/echo"), headers: { "X-User": "{{user}}" } };
		const { result } = await registerAndRun(node, tenant, config, { user: "ana\r\nX-Injected: yes" });
		expect(result.status).toBe("failed");
		expect(result.error.type).toBe("tool_error");
		expect(upstreamReceived.filter(r => r.headers["x-injected"] !== undefined)).toEqual([]);
	});

	it.each(["..", "."])("refuses a '%s' parameter that would climb out of its path segment", async value => {
		const tenant = newTenant();
		const config = { url: upstreamUrl("/echo/users/{{id}}/profile") };
		const { result } = await registerAndRun(node, tenant, config, { id: value });
		expect(result).toMatchObject({ status: "failed", error: { type: "tool_error" } });
		expect(upstreamPaths()).toEqual([]);
	});
});

describe("external_api: upstream failures", () => {
	it("fails a slow upstream with timeout at the tool's timeout_ms", async () => {
		const tenant = newTenant();
		const slow = externalApi({ url: upstreamUrl("/slow") }, { timeout_ms: 300 });
		const tool = await register(node, tenant, slow);
		const started = Date.now();
		const res = await execute(node, tenant, { tool_id: tool.body.id });
		const elapsed = Date.now() - started;
		expect(res.body).toMatchObject({ status: "failed", error: { type: "timeout" } });
		expect(res.body.error.message).toMatch(/300 ms/);
		expect(elapsed).toBeGreaterThanOrEqual(290);
		expect(elapsed).toBeLessThan(1000);
	});

	it("applies a request timeout_ms shorter than the tool's", async () => {
		const tenant = newTenant();
		const slow = externalApi({ url: upstreamUrl("/slow") }, { timeout_ms: 5000 });
		const tool = await register(node, tenant, slow);
		const started = Date.now();
		const res = await execute(node, tenant, { tool_id: tool.body.id, timeout_ms: 200 });
		expect(res.body).toMatchObject({ status: "failed", error: { type: "timeout" } });
		expect(Date.now() - started).toBeLessThan(1000);
	});

	it("fails a streamed 3 MB response over max_response_bytes and stops reading it", async () => {
		const config = { url: upstreamUrl("/big"), max_response_bytes: 65536 };
		const { result } = await registerAndRun(node, newTenant(), config);
		expect(result).toMatchObject({
			status: "failed",
			error: { type: "upstream_error", message: "response exceeds 65536 bytes" }
		});
		await big!.closed;
		expect(big!.completed).toBe(false);
		expect(big!.written).toBeLessThan(BIG_BYTES);
	});

	it("fails a declared 3 MB response over max_response_bytes without reading it", async () => {
		const config = { url: upstreamUrl("/declared-big"), max_response_bytes: 65536 };
		const { result } = await registerAndRun(node, newTenant(), config);
		expect(result).toMatchObject({
			status: "failed",
			error: { type: "upstream_error", message: "response exceeds 65536 bytes" }
		});
	});

	it.each([
		["/fail", "upstream answered 500"],
		["/nowhere", "upstream answered 404"]
	])("reports an upstream error status (%s) as upstream_error", async (path, message) => {
		const { result } = await registerAndRun(node, newTenant(), { url: upstreamUrl(path) });
		expect(result).toMatchObject({ status: "failed", error: { type: "upstream_error", message } });
		expect(result.result).toBeUndefined();
	});

	it("queues the functional validation again on demand, answering 202 with the task", async () => {
		const tenant = newTenant();
		const tool = await register(node, tenant, externalApi({ url: upstreamUrl("/echo") }));
		const queued = await call(node, "POST", `/tools/${tool.body.id}/validate`, tenant);
		expect(queued.status).toBe(202);
		const task = await eventually(async () => {
			const read = await call(node, "GET", `/internal/tasks/${queued.body.task_id}`, tenant);
			expect(read.body.status).toBe("completed");
			return read.body;
		});
		expect(task).toMatchObject({
			type: "tool_validation",
			payload: { tool_id: tool.body.id },
			result: { valid: true }
		});
		expect((await call(node, "GET", `/tools/${tool.body.id}`, tenant)).body.status).toBe("active");
	});

	it("keeps a tool whose allowed host refuses connections active, with its upstream unreachable", async () => {
		const tool = await register(node, newTenant(), externalApi({ url: `http://127.0.0.2:${closedPort}/` }));
		expect(tool.body.health).toMatchObject({
			state: "unreachable",
			error: expect.stringMatching(/ECONNREFUSED/)
		});
	});
});

describe("circuit breaker with the default guards", () => {
	it("fails fast after 10 upstream failures without reaching the upstream, per tenant and tool", async () => {
		const tenant = newTenant();
		const path = `/fail/${tenant}`;
		const failing = await register(node, tenant, externalApi({ url: upstreamUrl(path) }));
		const runFailing = async () => (await execute(node, tenant, { tool_id: failing.body.id })).body;

		for (let i = 0; i < 10; i++) {
			expect(await runFailing()).toMatchObject({
				status: "failed",
				error: { type: "upstream_error", message: "upstream answered 500" }
			});
		}
		expect(hitsOn(path)).toBe(10);

		for (let i = 0; i < 5; i++) {
			const started = Date.now();
			const result = await runFailing();
			expect(result).toMatchObject({ status: "failed", error: { type: "upstream_error" } });
			expect(result.error.message).toMatch(/circuit/i);
			expect(Date.now() - started).toBeLessThan(500);
		}
		expect(hitsOn(path)).toBe(10);

		// The same tenant's other tool is unaffected.
		const { result: ownOther } = await registerAndRun(node, tenant, { url: upstreamUrl("/echo") });
		expect(ownOther.status).toBe("completed");

		// Another tenant: a different tool runs, and even its own tool on the same failing URL is tried.
		const other = newTenant();
		const { result: different } = await registerAndRun(node, other, { url: upstreamUrl("/echo") });
		expect(different).toMatchObject({ status: "completed", result: { status: 200 } });
		const { result: sameUrl } = await registerAndRun(node, other, { url: upstreamUrl(path) });
		expect(sameUrl.error).toEqual({ type: "upstream_error", message: "upstream answered 500" });
		expect(hitsOn(path)).toBe(11);

		// Still open for the first tenant.
		expect((await runFailing()).error.message).toMatch(/circuit/i);
		expect(hitsOn(path)).toBe(11);
	});
});

describe("circuit breaker and bulkhead with tuned guards", () => {
	let tuned: TestNode;
	const RESET_MS = 300;

	beforeAll(async () => {
		tuned = await startNode({
			settings: {
				outboundAllowHosts: ["127.0.0.2"],
				orchestratorUrl,
				guards: {
					errorThresholdPercentage: 50,
					volumeThreshold: 3,
					rollingCountTimeout: 10000,
					resetTimeout: RESET_MS,
					capacity: 2,
					maxGuards: 1000
				}
			}
		});
	});

	afterAll(async () => {
		await tuned?.stop();
	});

	async function openCircuit(tenant: string, path: string) {
		const tool = await register(tuned, tenant, externalApi({ url: upstreamUrl(path) }));
		const run = async () => (await execute(tuned, tenant, { tool_id: tool.body.id })).body;
		for (let i = 0; i < 3; i++) expect((await run()).error.message).toBe("upstream answered 500");
		expect((await run()).error.message).toMatch(/circuit/i);
		expect(hitsOn(path)).toBe(3);
		return run;
	}

	it("lets one trial call through after resetTimeout and closes when the upstream recovered", async () => {
		const tenant = newTenant();
		const path = `/flip/${tenant}`;
		const run = await openCircuit(tenant, path);
		healthy.add(path);
		expect((await run()).error.message).toMatch(/circuit/i);
		await delay(RESET_MS + 150);
		expect(await run()).toMatchObject({ status: "completed", result: { data: { recovered: true } } });
		expect(await run()).toMatchObject({ status: "completed" });
		expect(hitsOn(path)).toBe(5);
	});

	it("opens again at once when the trial call fails", async () => {
		const tenant = newTenant();
		const path = `/flip/${tenant}`;
		const run = await openCircuit(tenant, path);
		await delay(RESET_MS + 150);
		expect((await run()).error).toEqual({ type: "upstream_error", message: "upstream answered 500" });
		expect((await run()).error.message).toMatch(/circuit/i);
		expect(hitsOn(path)).toBe(4);
	});

	it("counts timeouts towards opening the circuit", async () => {
		const tenant = newTenant();
		const slow = externalApi({ url: upstreamUrl("/slow") }, { timeout_ms: 100 });
		const tool = await register(tuned, tenant, slow);
		const run = async () => (await execute(tuned, tenant, { tool_id: tool.body.id })).body;
		for (let i = 0; i < 3; i++) expect((await run()).error.type).toBe("timeout");
		const open = await run();
		expect(open.error.type).toBe("upstream_error");
		expect(open.error.message).toMatch(/circuit/i);
		expect(hitsOn("/slow")).toBe(3);
	});

	it("does not count refused destinations (tool_error) towards opening the circuit", async () => {
		const tenant = newTenant();
		const tool = await register(tuned, tenant, externalApi({ url: upstreamUrl("/to-victim") }));
		for (let i = 0; i < 6; i++) {
			const res = await execute(tuned, tenant, { tool_id: tool.body.id });
			expect(res.body.error.type).toBe("tool_error");
			expect(res.body.error.message).toMatch(/^outbound address refused/);
		}
	});

	it("refuses a call beyond the tool's capacity at once, without holding up another tenant", async () => {
		const tenant = newTenant();
		const other = newTenant();
		const path = "/delay/600";
		const tool = await register(tuned, tenant, externalApi({ url: upstreamUrl(path) }));
		const otherTool = await register(tuned, other, externalApi({ url: upstreamUrl(path) }));
		const started = Date.now();
		const timed = async (who: string, id: string) => {
			const res = await execute(tuned, who, { tool_id: id });
			return { ...res.body, elapsed: Date.now() - started };
		};
		const first = [timed(tenant, tool.body.id), timed(tenant, tool.body.id)];
		await delay(100);
		const later = [timed(tenant, tool.body.id), timed(other, otherTool.body.id)];
		const [a, b, refused, otherTenant] = await Promise.all([...first, ...later]);
		expect([a.status, b.status, otherTenant.status]).toEqual(["completed", "completed", "completed"]);
		expect(refused).toMatchObject({ status: "failed", error: { type: "upstream_error" } });
		expect(refused.error.message).toMatch(/capacity/);
		expect(refused.elapsed).toBeLessThan(500);
		expect(hitsOn(path)).toBe(3);
	});
});

describe("RAG tools through the orchestrator stand-in", () => {
	const rag = (type: string, extra: Record<string, unknown> = {}) => ({
		name: newName(type),
		description: "Knowledge base",
		type,
		timeout_ms: 2000,
		...extra
	});

	const bodyOf = (received: Received) => JSON.parse(received.body) as Record<string, unknown>;

	it("rag_query POSTs to /api/v1/rag/query with the service token and the tenant", async () => {
		const tenant = newTenant();
		const config = { collection_id: "kb-main", top_k: 4 };
		const tool = await register(node, tenant, rag("rag_query", { config }));
		const parameters = { query: "What is our refund policy?", filters: { lang: "en" } };
		const res = await execute(node, tenant, { tool_id: tool.body.id, parameters });
		expect(res.body).toMatchObject({
			status: "completed",
			result: { answer: "42", sources: [{ id: "doc-1", score: 0.9 }] }
		});
		expect(orchestratorReceived).toHaveLength(1);
		const [got] = orchestratorReceived;
		expect(got.method).toBe("POST");
		expect(got.url).toBe("/api/v1/rag/query");
		expect(got.headers.authorization).toBe(`Bearer ${SERVICE_TOKEN}`);
		expect(got.headers["x-tenant-id"]).toBe(tenant);
		expect(got.headers["content-type"]).toBe("application/json");
		expect(bodyOf(got)).toEqual({ tenant_id: tenant, ...parameters, collection_id: "kb-main", top_k: 4 });
	});

	it("rag_search POSTs to /api/v1/rag/search and returns the orchestrator's JSON", async () => {
		const tenant = newTenant();
		const answer = { results: [{ id: "doc-7", text: "Refunds within 30 days", score: 0.71 }], total: 1 };
		orchestratorReply = json(200, answer);
		const tool = await register(node, tenant, rag("rag_search", { config: { top_k: 10 } }));
		const parameters = { query: "refund", top_k: 2 };
		const res = await execute(node, tenant, { tool_name: tool.body.name, parameters });
		expect(res.body).toMatchObject({ status: "completed", tool_id: tool.body.id, result: answer });
		const [got] = orchestratorReceived;
		expect(got.url).toBe("/api/v1/rag/search");
		expect(got.headers.authorization).toBe(`Bearer ${SERVICE_TOKEN}`);
		expect(got.headers["x-tenant-id"]).toBe(tenant);
		expect(bodyOf(got)).toEqual({ tenant_id: tenant, query: "refund", top_k: 2 });
	});

	it("answers 422 for a tenant_id parameter under the built-in schema, sending nothing", async () => {
		const tenant = newTenant();
		const tool = await register(node, tenant, rag("rag_query"));
		const res = await call(node, "POST", "/internal/execute", tenant, {
			tool_id: tool.body.id,
			parameters: { query: "q", tenant_id: newTenant() }
		});
		expect(res.status).toBe(422);
		expect(orchestratorReceived).toEqual([]);
	});

	it("keeps the caller's tenant when a schema lets a tenant_id parameter through", async () => {
		const tenant = newTenant();
		const victim = newTenant();
		const parameters = {
			type: "object",
			properties: { query: { type: "string" }, tenant_id: { type: "string" } },
			required: ["query"]
		};
		const tool = await register(node, tenant, rag("rag_search", { parameters }));
		const res = await execute(node, tenant, {
			tool_id: tool.body.id,
			parameters: { query: "q", tenant_id: victim }
		});
		expect(res.body.status).toBe("completed");
		const [got] = orchestratorReceived;
		expect(bodyOf(got)).toEqual({ tenant_id: tenant, query: "q" });
		expect(got.headers["x-tenant-id"]).toBe(tenant);
		expect(JSON.stringify(got)).not.toContain(victim);
	});

	it("sends the executing tenant, not '*', for a global RAG tool", async () => {
		const tool = await register(node, "*", rag("rag_query"));
		const tenant = newTenant();
		const res = await execute(node, tenant, { tool_id: tool.body.id, parameters: { query: "q" } });
		expect(res.body.status).toBe("completed");
		const [got] = orchestratorReceived;
		expect(got.headers["x-tenant-id"]).toBe(tenant);
		expect(bodyOf(got).tenant_id).toBe(tenant);
	});

	it.each([
		["a 503", json(503, { error: "unavailable" }), "orchestrator answered 503"],
		["invalid JSON", ((res: ServerResponse) => res.end("<html>")) as Reply, "with invalid JSON"]
	])("reports %s from the orchestrator as upstream_error", async (_case, reply, message) => {
		orchestratorReply = reply;
		const tenant = newTenant();
		const tool = await register(node, tenant, rag("rag_query"));
		const res = await execute(node, tenant, { tool_id: tool.body.id, parameters: { query: "q" } });
		expect(res.body).toMatchObject({ status: "failed", error: { type: "upstream_error" } });
		expect(res.body.error.message).toContain(message);
		expect(orchestratorReceived).toHaveLength(1);
	});

	it("does not follow an orchestrator redirect, so the service token stays put", async () => {
		orchestratorReply = res => redirect(res, 307, `http://127.0.0.1:${port}/steal`);
		const tenant = newTenant();
		const tool = await register(node, tenant, rag("rag_search"));
		const res = await execute(node, tenant, { tool_id: tool.body.id, parameters: { query: "q" } });
		expect(res.body).toMatchObject({ status: "failed", error: { type: "upstream_error" } });
		expect(res.body.error.message).toMatch(/orchestrator/);
	});

	it("fails a slow orchestrator with timeout at the tool's timeout_ms", async () => {
		orchestratorReply = res => {
			const timer = setTimeout(() => json(200, { late: true })(res), 3000);
			res.on("close", () => clearTimeout(timer));
		};
		const tenant = newTenant();
		const tool = await register(node, tenant, rag("rag_query", { timeout_ms: 300 }));
		const started = Date.now();
		const res = await execute(node, tenant, { tool_id: tool.body.id, parameters: { query: "q" } });
		expect(res.body).toMatchObject({ status: "failed", error: { type: "timeout" } });
		expect(Date.now() - started).toBeLessThan(1000);
	});

	it.each([
		"http://127.0.0.1:PORT/api",
		"@127.0.0.1:PORT/api",
		"api/v1/rag/query",
		"/api?x=1",
		"/api/v1/rag/../../admin",
		"/../admin"
	])("refuses the endpoint %s at registration, so the token cannot go elsewhere", async endpoint => {
		const tenant = newTenant();
		const definition = rag("rag_query", { config: { endpoint: endpoint.replace("PORT", String(port)) } });
		const res = await call(node, "POST", "/tools", tenant, definition);
		expect(res.status).toBe(422);
		expect(res.body.data.map((problem: { field: string }) => problem.field)).toContain("config.endpoint");
	});
});
