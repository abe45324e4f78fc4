import dns from "node:dns";
import { once } from "node:events";
import http from "node:http";
import net, { type AddressInfo } from "node:net";
import { setTimeout as delay } from "node:timers/promises";

import { createAjv } from "../../lib/json-schema";
import { guardedRequest, OutboundRefused } from "../../lib/outbound/guarded-fetch";
import { type ToolContext, ToolFailure } from "../../tools/base";
import { externalApiTool } from "../../tools/external-api";
import type { JsonObject } from "../../types/wire";

/**
 * Allowed upstreams listen on 127.0.0.2 and 127.0.0.3 (Linux routes all of 127/8 to loopback) and
 * are opened with OUTBOUND_ALLOW_HOSTS; a forbidden listener on 127.0.0.1, on the same port as the
 * upstream, counts connections and must never get one. Non-loopback targets (10.x, 169.254.x, ...)
 * must be refused before any connection is attempted: nothing here may leave the machine.
 */

interface Received {
	/** The local address the request arrived on: which upstream got it. */
	at: string;
	method: string;
	url: string;
	headers: http.IncomingHttpHeaders;
	body: string;
}

const HUGE_BYTES = 5 * 1024 * 1024;

let port: number;
let upstream: http.Server;
let otherOrigin: http.Server;
let forbidden: http.Server;
let forbiddenConnections = 0;
/** Another service on the allowed upstream's address, which only a port-less entry opens. */
let side: http.Server;
let sidePort: number;
let sideConnections = 0;
let received: Received[] = [];
/** What the server saw of the last `/huge` response. */
let huge: { written: number; completed: boolean; closed: Promise<unknown> };

const redirect = (res: http.ServerResponse, status: number, location: string) => {
	res.writeHead(status, { Location: location });
	res.end();
};

async function streamHuge(res: http.ServerResponse): Promise<void> {
	res.writeHead(200, { "Content-Type": "application/octet-stream" });
	huge = { written: 0, completed: false, closed: once(res, "close") };
	const chunk = Buffer.alloc(64 * 1024, "x");
	// Paced, so the test can see that the client hung up long before the end.
	while (huge.written < HUGE_BYTES && !res.destroyed) {
		res.write(chunk);
		huge.written += chunk.length;
		await delay(5);
	}
	if (!res.destroyed) {
		huge.completed = true;
		res.end();
	}
}

function route(req: http.IncomingMessage, res: http.ServerResponse, body: string): void {
	const path = new URL(req.url ?? "/", "http://upstream").pathname;
	const at = req.socket.localAddress ?? "";
	received.push({ at, method: req.method ?? "", url: req.url ?? "", headers: req.headers, body });
	if (path.startsWith("/echo")) {
		res.writeHead(200, { "Content-Type": "application/json; charset=utf-8" });
		res.end(JSON.stringify({ ok: true, nested: { items: [{ id: 1 }, { id: 2 }] } }));
	} else if (path === "/text") {
		res.writeHead(200, { "Content-Type": "text/plain" });
		res.end("hello");
	} else if (path === "/fail") {
		res.writeHead(500, { "Content-Type": "application/json" });
		res.end('{"error":"boom"}');
	} else if (path === "/slow") {
		const timer = setTimeout(() => res.end("late"), 3000);
		res.on("close", () => clearTimeout(timer));
	} else if (path === "/huge") {
		void streamHuge(res);
	} else if (path === "/declared-huge") {
		res.writeHead(200, { "Content-Length": String(50 * 1024 * 1024) });
		res.write("x");
	} else if (path === "/to-loopback") redirect(res, 302, `http://127.0.0.1:${port}/`);
	else if (path === "/to-localhost") redirect(res, 301, `http://localhost:${port}/`);
	else if (path === "/to-metadata") redirect(res, 307, "http://169.254.169.254/latest/meta-data/");
	else if (path === "/to-file") redirect(res, 302, "file:///etc/passwd");
	else if (path === "/to-same") redirect(res, 302, "/echo/same");
	else if (path === "/to-other") redirect(res, 307, `http://127.0.0.3:${port}/echo/other`);
	else if (path === "/see-other") redirect(res, 303, "/echo/after");
	else if (path === "/loop") redirect(res, 302, "/loop");
	else if (path === "/to-side-port") redirect(res, 302, `http://127.0.0.2:${sidePort}/echo/side`);
	else if (path === "/to-side-port-by-name") redirect(res, 302, `http://upstream.test:${sidePort}/echo/side`);
	else {
		res.writeHead(404);
		res.end();
	}
}

function createUpstream(): http.Server {
	return http.createServer((req, res) => {
		const chunks: Buffer[] = [];
		req.on("data", (chunk: Buffer) => chunks.push(chunk));
		req.on("end", () => route(req, res, Buffer.concat(chunks).toString("utf8")));
	});
}

async function listen(server: http.Server, host: string, at = 0): Promise<number> {
	server.listen(at, host);
	await once(server, "listening");
	return (server.address() as AddressInfo).port;
}

async function shut(server: http.Server): Promise<void> {
	server.closeAllConnections();
	server.close();
	await once(server, "close");
}

beforeAll(async () => {
	upstream = createUpstream();
	port = await listen(upstream, "127.0.0.2");
	otherOrigin = createUpstream();
	await listen(otherOrigin, "127.0.0.3", port);
	forbidden = http.createServer((_req, res) => res.end("you should not be here"));
	forbidden.on("connection", () => forbiddenConnections++);
	await listen(forbidden, "127.0.0.1", port);
	side = createUpstream();
	side.on("connection", () => sideConnections++);
	sidePort = await listen(side, "127.0.0.2");
});

afterAll(async () => {
	await Promise.all([shut(upstream), shut(otherOrigin), shut(forbidden), shut(side)]);
});

beforeEach(() => {
	received = [];
});

afterEach(() => {
	jest.restoreAllMocks();
	expect(forbiddenConnections).toBe(0);
});

const ALLOWED = ["127.0.0.2", "127.0.0.3/32"];

function context(options: { allow?: string[]; timeoutMs?: number; signal?: AbortSignal } = {}): ToolContext {
	return {
		tenant_id: "t1",
		agent_id: null,
		execution_id: "e1",
		signal: options.signal ?? new AbortController().signal,
		timeout_ms: options.timeoutMs ?? 2000,
		call: async () => {
			throw new Error("unused");
		},
		env: { outbound_allow_hosts: options.allow ?? ALLOWED }
	};
}

const upstreamUrl = (path: string) => `http://127.0.0.2:${port}${path}`;

const run = (config: JsonObject, params: JsonObject = {}, ctx = context()) =>
	externalApiTool.execute(params, config, ctx);

async function failure(config: JsonObject, params: JsonObject = {}, ctx = context()): Promise<ToolFailure> {
	const err: unknown = await run(config, params, ctx).then(
		() => undefined,
		(e: unknown) => e
	);
	expect(err).toBeInstanceOf(ToolFailure);
	return err as ToolFailure;
}

type LookupCallback = (err: NodeJS.ErrnoException | null, addresses: dns.LookupAddress[]) => void;

/** Answers chosen names from `records` (later calls take later entries); other names resolve for real. */
function fakeDns(records: Record<string, string[][]>) {
	const real = dns.lookup;
	const calls: string[] = [];
	const fake = (hostname: string, options: dns.LookupAllOptions, callback: LookupCallback) => {
		const answers = records[hostname];
		if (!answers) return real(hostname, options, callback);
		calls.push(hostname);
		const addresses = answers[Math.min(calls.filter(name => name === hostname).length, answers.length) - 1];
		const answer = addresses.map(address => ({ address, family: net.isIP(address) }));
		process.nextTick(() => callback(null, answer));
	};
	jest.spyOn(dns, "lookup").mockImplementation(fake as unknown as typeof dns.lookup);
	return calls;
}

describe("SSRF: refused destinations", () => {
	// PORT is the forbidden listener's port, known only once it listens.
	it.each([
		"http://127.0.0.1:PORT/",
		"http://localhost:PORT/",
		"http://LOCALHOST:PORT/",
		"http://2130706433:PORT/",
		"http://0177.0.0.1:PORT/",
		"http://0x7f.0.0.1:PORT/",
		"http://127.1:PORT/",
		"http://0.0.0.0:PORT/",
		"http://[::1]:PORT/",
		"http://[::]:PORT/",
		"http://[::ffff:127.0.0.1]:PORT/",
		"http://[::ffff:7f00:1]:PORT/",
		"http://[::7f00:1]:PORT/",
		"http://[64:ff9b::127.0.0.1]:PORT/",
		"https://127.0.0.1:PORT/",
		"http://169.254.169.254/latest/meta-data/",
		"http://[fd00:ec2::254]/latest/meta-data/",
		"http://[::ffff:a9fe:a9fe]/",
		"http://10.0.0.1/",
		"http://192.168.1.1/",
		"http://172.16.0.1/",
		"http://100.64.0.1/",
		"http://[fe80::1]/",
		"file:///etc/passwd",
		"ftp://127.0.0.1:PORT/",
		"gopher://127.0.0.1:PORT/_GET%20/",
		"http://user:pass@example.com/",
		"http://user@127.0.0.2:PORT/echo"
	])("refuses %s before connecting", async target => {
		const connects = jest.spyOn(net, "connect");
		const err = await failure({ url: target.replace("PORT", String(port)) });
		expect(err.type).toBe("tool_error");
		expect(err.message).toMatch(/^outbound (address|URL) refused: /);
		// No socket was ever opened towards an IP address; a name (localhost) fails in its lookup.
		const hosts = connects.mock.calls.map(call => (call[0] as { host?: string }).host ?? "");
		expect(hosts.filter(host => net.isIP(host))).toEqual([]);
		expect(received).toEqual([]);
	});

	it("keeps the message free of internal detail beyond the host", async () => {
		const err = await failure({ url: `http://localhost:${port}/` });
		expect(err.message).toBe("outbound address refused: localhost");
	});

	it("refuses a name resolving to a private address, without connecting", async () => {
		fakeDns({ "internal.test": [["10.0.0.1"]] });
		const err = await failure({ url: "http://internal.test/" });
		expect(err).toMatchObject({ type: "tool_error", message: "outbound address refused: internal.test" });
	});

	it("refuses a name when any of its addresses is refused", async () => {
		fakeDns({ "mixed.test": [["127.0.0.2", "127.0.0.1"]] });
		const err = await failure({ url: `http://mixed.test:${port}/echo` });
		expect(err.type).toBe("tool_error");
		expect(received).toEqual([]);
	});

	it("connects to the address it checked: a name rebinding to loopback after the check", async () => {
		const lookups = fakeDns({ "rebind.test": [["127.0.0.2"], ["127.0.0.1"]] });
		const result = await run({ url: `http://rebind.test:${port}/echo` });
		expect(result.status).toBe(200);
		expect(lookups).toEqual(["rebind.test"]);
		expect(received.map(r => r.at)).toEqual(["127.0.0.2"]);
		// The next request resolves again and meets the rebound address: refused.
		expect((await failure({ url: `http://rebind.test:${port}/echo` })).type).toBe("tool_error");
	});

	it.each(["/to-loopback", "/to-localhost", "/to-metadata", "/to-file"])(
		"refuses a redirect from an allowed upstream (%s)",
		async path => {
			const err = await failure({ url: upstreamUrl(path) });
			expect(err.type).toBe("tool_error");
			expect(err.message).toMatch(/^outbound (address|URL) refused: /);
			expect(received.map(r => r.url)).toEqual([path]);
		}
	);

	it("refuses everything private when the allow-list is empty", async () => {
		const err = await failure({ url: upstreamUrl("/echo") }, {}, context({ allow: [] }));
		expect(err).toMatchObject({ type: "tool_error", message: "outbound address refused: 127.0.0.2" });
	});
});

describe("allow-list entries with a port", () => {
	beforeEach(() => {
		sideConnections = 0;
	});

	it("opens only that port of an address: a redirect to another port of the same host is refused", async () => {
		const allow = [`127.0.0.2:${port}`];
		expect(await run({ url: upstreamUrl("/echo") }, {}, context({ allow }))).toMatchObject({ status: 200 });
		const err = await failure({ url: upstreamUrl("/to-side-port") }, {}, context({ allow }));
		expect(err).toMatchObject({ type: "tool_error", message: "outbound address refused: 127.0.0.2" });
		expect(received.map(r => r.url)).toEqual(["/echo", "/to-side-port"]);
		expect(sideConnections).toBe(0);
	});

	it("opens only that port of a host name, checked on every hop", async () => {
		fakeDns({ "upstream.test": [["127.0.0.2"]] });
		const allow = [`upstream.test:${port}`];
		const url = `http://upstream.test:${port}/to-side-port-by-name`;
		const err = await failure({ url }, {}, context({ allow }));
		expect(err).toMatchObject({ type: "tool_error", message: "outbound address refused: upstream.test" });
		expect(sideConnections).toBe(0);
		// Without a port the entry opens every port of the host, the side service included.
		expect(await run({ url }, {}, context({ allow: ["upstream.test"] }))).toMatchObject({ status: 200 });
		expect(sideConnections).toBe(1);
	});

	it("reads CIDR:port entries", async () => {
		const allow = [`127.0.0.0/24:${port}`];
		expect(await run({ url: upstreamUrl("/echo") }, {}, context({ allow }))).toMatchObject({ status: 200 });
		expect((await failure({ url: `http://127.0.0.2:${sidePort}/echo` }, {}, context({ allow }))).type).toBe(
			"tool_error"
		);
		expect(sideConnections).toBe(0);
	});
});

describe("allowed upstream", () => {
	it("templates path, query and header values and sends unused parameters as the query", async () => {
		const config = {
			url: `http://127.0.0.2:${port}/echo/{{user}}/items?fixed=1&q={{q}}`,
			headers: { "X-Api-Key": "secret-{{tenant}}", Accept: "application/json" },
			query: { lang: "{{lang}}", static: "s" },
			response_path: "nested.items.1"
		};
		const params = { user: "a b/c", q: "x&y=z", lang: "es", tenant: "acme", extra: 5, tags: ["t1", "t2"] };
		expect(await run(config, params)).toEqual({ status: 200, data: { id: 2 } });

		expect(received).toHaveLength(1);
		const [got] = received;
		const url = new URL(got.url, "http://upstream");
		expect(got.method).toBe("GET");
		expect(url.pathname).toBe("/echo/a%20b%2Fc/items");
		expect([...url.searchParams]).toEqual([
			["fixed", "1"],
			["q", "x&y=z"],
			["lang", "es"],
			["static", "s"],
			["extra", "5"],
			["tags", "t1"],
			["tags", "t2"]
		]);
		expect(got.headers["x-api-key"]).toBe("secret-acme");
		expect(got.headers.accept).toBe("application/json");
		expect(got.body).toBe("");
	});

	it("templates body_template: whole placeholders keep their JSON value, others interpolate", async () => {
		const config = {
			url: upstreamUrl("/echo"),
			method: "POST",
			headers: { Authorization: "Bearer tenant-secret" },
			body_template: {
				name: "{{name}}",
				count: "{{ count }}",
				greeting: "hello {{name}}, {{count}}",
				list: ["{{count}}", "x", 7],
				meta: { tags: "{{tags}}", missing: "{{nope}}" }
			}
		};
		const result = await run(config, { name: "Ana", count: 3, tags: ["a"] });
		expect(result).toEqual({ status: 200, data: { ok: true, nested: { items: [{ id: 1 }, { id: 2 }] } } });
		const [got] = received;
		expect(got.method).toBe("POST");
		expect(got.headers.authorization).toBe("Bearer tenant-secret");
		expect(got.headers["content-type"]).toBe("application/json");
		expect(JSON.parse(got.body)).toEqual({
			name: "Ana",
			count: 3,
			greeting: "hello Ana, 3",
			list: [3, "x", 7],
			meta: { tags: ["a"] }
		});
	});

	it.each(["POST", "PUT", "PATCH"])("%s without body_template sends the parameters as JSON", async method => {
		await run({ url: upstreamUrl("/echo/{{id}}"), method }, { id: 7, note: "n" });
		const [got] = received;
		expect(got).toMatchObject({ method, url: "/echo/7" });
		expect(JSON.parse(got.body)).toEqual({ id: 7, note: "n" });
	});

	it("DELETE without body_template sends the parameters as the query", async () => {
		await run({ url: upstreamUrl("/echo/{{id}}"), method: "DELETE" }, { id: 7, hard: true });
		expect(received[0]).toMatchObject({ method: "DELETE", url: "/echo/7?hard=true", body: "" });
	});

	it("returns text bodies as text and a missing response_path as null", async () => {
		expect(await run({ url: upstreamUrl("/text") })).toEqual({ status: 200, data: "hello" });
		expect(await run({ url: upstreamUrl("/echo"), response_path: "nested.nothing.0" })).toEqual({
			status: 200,
			data: null
		});
	});

	it("reaches a private address through an allowed host name", async () => {
		fakeDns({ "api.internal.test": [["127.0.0.2"]] });
		const result = await run(
			{ url: `http://api.internal.test:${port}/echo` },
			{},
			context({ allow: ["API.internal.test"] })
		);
		expect(result.status).toBe(200);
		expect(received[0].headers.host).toBe(`api.internal.test:${port}`);
	});

	it("follows a same-origin redirect with the secret headers", async () => {
		await run({ url: upstreamUrl("/to-same"), headers: { "X-Api-Key": "k" } });
		expect(received.map(r => [r.url, r.headers["x-api-key"]])).toEqual([
			["/to-same", "k"],
			["/echo/same", "k"]
		]);
	});

	it("drops secret headers on a redirect to another origin", async () => {
		const headers = { "X-Api-Key": "k", Authorization: "Bearer t", Cookie: "c=1", Accept: "text/plain" };
		await run({ url: upstreamUrl("/to-other"), method: "PUT", headers }, { a: 1 });
		const [first, second] = received;
		expect(first.headers).toMatchObject({ "x-api-key": "k", authorization: "Bearer t", cookie: "c=1" });
		expect(second).toMatchObject({ at: "127.0.0.3", method: "PUT", url: "/echo/other", body: '{"a":1}' });
		expect(second.headers["x-api-key"]).toBeUndefined();
		expect(second.headers.authorization).toBeUndefined();
		expect(second.headers.cookie).toBeUndefined();
		expect(second.headers.accept).toBe("text/plain");
	});

	it("continues a 303 after a POST as a GET without the body", async () => {
		await run({ url: upstreamUrl("/see-other"), method: "POST" }, { a: 1 });
		expect(received.map(r => [r.method, r.url, r.body, r.headers["content-type"]])).toEqual([
			["POST", "/see-other", '{"a":1}', "application/json"],
			["GET", "/echo/after", "", undefined]
		]);
	});

	it("gives up after 3 redirects", async () => {
		const err = await failure({ url: upstreamUrl("/loop") });
		expect(err).toMatchObject({ type: "upstream_error", message: "more than 3 redirects" });
		expect(received).toHaveLength(4);
	});
});

describe("upstream failures", () => {
	it("reports an upstream 500 as upstream_error", async () => {
		const err = await failure({ url: upstreamUrl("/fail") });
		expect(err).toMatchObject({ type: "upstream_error", message: "upstream answered 500" });
	});

	it("times out a slow upstream at the tool's timeout_ms", async () => {
		const started = Date.now();
		const err = await failure({ url: upstreamUrl("/slow") }, {}, context({ timeoutMs: 300 }));
		expect(err.type).toBe("timeout");
		expect(Date.now() - started).toBeLessThan(2000);
	});

	it("stops when the execution's signal aborts", async () => {
		const controller = new AbortController();
		setTimeout(() => controller.abort(), 100);
		const err = await failure({ url: upstreamUrl("/slow") }, {}, context({ signal: controller.signal }));
		expect(err.type).toBe("timeout");
	});

	it("caps a huge response and stops reading it", async () => {
		const err = await failure({ url: upstreamUrl("/huge") });
		expect(err).toMatchObject({ type: "upstream_error", message: "response exceeds 1048576 bytes" });
		await huge.closed;
		expect(huge.completed).toBe(false);
		expect(huge.written).toBeLessThan(HUGE_BYTES);
	});

	it("applies max_response_bytes from the config", async () => {
		const err = await failure({ url: upstreamUrl("/huge"), max_response_bytes: 100_000 });
		expect(err).toMatchObject({ type: "upstream_error", message: "response exceeds 100000 bytes" });
		await huge.closed;
		expect(huge.completed).toBe(false);
	});

	it("refuses a declared Content-Length over the cap without reading", async () => {
		const err = await failure({ url: upstreamUrl("/declared-huge") });
		expect(err).toMatchObject({ type: "upstream_error", message: "response exceeds 1048576 bytes" });
	});

	it("reports a refused connection as upstream_error", async () => {
		const closed = http.createServer();
		const freePort = await listen(closed, "127.0.0.2");
		await shut(closed);
		const err = await failure({ url: `http://127.0.0.2:${freePort}/` });
		expect(err).toMatchObject({ type: "upstream_error", message: "upstream unreachable (ECONNREFUSED)" });
	});
});

describe("guardedRequest", () => {
	it("returns status, headers, body and the final URL", async () => {
		const response = await guardedRequest(upstreamUrl("/to-same"), { allowHosts: ALLOWED });
		expect(response.status).toBe(200);
		expect(response.url).toBe(upstreamUrl("/echo/same"));
		expect(response.headers["content-type"]).toMatch(/json/);
		expect(JSON.parse(response.body.toString()).ok).toBe(true);
	});

	it("honours maxRedirects: 0 follows no redirect", async () => {
		const request = guardedRequest(upstreamUrl("/to-same"), { allowHosts: ALLOWED, maxRedirects: 0 });
		await expect(request).rejects.toThrow("more than 0 redirects");
		expect(received).toHaveLength(1);
	});

	it("rejects refusals with OutboundRefused carrying the reason", async () => {
		const err: unknown = await guardedRequest(`http://127.0.0.1:${port}/`).catch((e: unknown) => e);
		expect(err).toBeInstanceOf(OutboundRefused);
		expect(err).toMatchObject({ message: "outbound address refused: 127.0.0.1", reason: "loopback" });
	});

	it("rejects with the caller's abort reason", async () => {
		const reason = new Error("shutting down");
		const err: unknown = await guardedRequest(upstreamUrl("/slow"), {
			allowHosts: ALLOWED,
			signal: AbortSignal.abort(reason)
		}).catch((e: unknown) => e);
		expect(err).toBe(reason);
	});
});

describe("config checks", () => {
	const ajv = createAjv();
	const validate = ajv.compile(externalApiTool.configSchema);

	it.each([
		{ url: "https://api.example.com/v1/{{id}}" },
		{
			url: "http://api.example.com/",
			method: "POST",
			headers: { "X-Api-Key": "k" },
			query: { a: "{{a}}" },
			body_template: { x: ["{{x}}"] },
			response_path: "data.items.0",
			max_response_bytes: 5 * 1024 * 1024
		}
	])("accepts %j", config => {
		expect(validate(config)).toBe(true);
		expect(externalApiTool.checkConfig?.(config)).toEqual([]);
	});

	it.each([
		{},
		{ url: "ftp://example.com/" },
		{ url: "http://example.com/", method: "HEAD" },
		{ url: "http://example.com/", headers: { "Bad Header": "x" } },
		{ url: "http://example.com/", query: { a: 1 } },
		{ url: "http://example.com/", max_response_bytes: 5 * 1024 * 1024 + 1 },
		{ url: "http://example.com/", response_path: "a..b" },
		{ url: "http://example.com/", extra: true }
	])("the schema rejects %j", config => {
		expect(validate(config)).toBe(false);
	});

	it.each([
		["not a url", "must be a valid URL"],
		["file:///etc/passwd", "must use http or https"],
		["gopher://example.com/", "must use http or https"],
		["http://user:pass@example.com/", "must not contain credentials; use headers"],
		["http://{{host}}.example.com/", "placeholders are allowed in the path and query only"],
		["http://example.com:{{port}}/", "must be a valid URL"]
	])("checkConfig refuses %s", (url, message) => {
		expect(externalApiTool.checkConfig?.({ url })).toEqual([{ field: "config.url", message }]);
	});
});
