import { request } from "http";
import { connect } from "net";
import zlib from "zlib";
import { LATEST_PROTOCOL_VERSION } from "@modelcontextprotocol/sdk/types.js";
import WebSocket from "ws";
import { http, SERVICE_TOKEN, startNode, type TestNode } from "../support/node";
import { calculatorTool } from "../support/definitions";
import { eventually, until } from "../support/eventually";
import { INITIALIZE } from "../support/mcp";
import { json, Upstream } from "../support/upstream";

/** Sends raw bytes, for inputs fetch would refuse to produce. */
function rawRequest(
	url: string,
	path: string,
	method: string,
	headers: Record<string, string>,
	body?: Buffer | string
) {
	return new Promise<{ status: number; body: string }>((resolve, reject) => {
		const req = request(url + path, { method, headers }, res => {
			let text = "";
			res.setEncoding("utf8");
			res.on("data", chunk => (text += chunk));
			res.on("end", () => resolve({ status: res.statusCode ?? 0, body: text }));
		});
		req.on("error", reject);
		req.end(body);
	});
}

describe("bad input over HTTP", () => {
	let node: TestNode;
	const tenant = "bad-input";
	const post = (path: string, body: unknown, headers?: Record<string, string>) =>
		http(node.url, "POST", `/api/v1${path}`, { tenant, body, headers });

	beforeAll(async () => {
		node = await startNode();
	});

	afterAll(() => node.stop());

	it.each([
		["truncated JSON", '{"name": "x"'],
		["a trailing comma", '{"name": "x",}'],
		["a bare string", '"just a string"'],
		["a number", "42"],
		["single quotes", "{'name': 'x'}"]
	])("answers 400 INVALID_JSON for %s", async (_case, raw) => {
		const res = await post("/tools", raw);
		expect(res.status).toBe(400);
		expect(res.body).toMatchObject({ code: 400, type: "INVALID_JSON" });
		expect(typeof res.body.message).toBe("string");
	});

	it.each([
		["null", "null"],
		["a bare string", '"just a string"'],
		["a number", "42"]
	])("says a body of %s is JSON but not an object", async (_case, raw) => {
		const res = await post("/tools", raw);
		expect(res.status).toBe(400);
		expect(res.body).toMatchObject({
			code: 400,
			type: "INVALID_JSON",
			message: "The request body must be a JSON object"
		});
	});

	it("answers 413 for a body over 1 MiB", async () => {
		const res = await post("/tools", {
			name: "big",
			type: "calculator",
			description: "x".repeat(1024 * 1024)
		});
		expect(res.status).toBe(413);
		expect(res.body).toMatchObject({ code: 413, type: "PAYLOAD_TOO_LARGE" });
	});

	it("accepts a body just under 1 MiB as far as parsing goes", async () => {
		const res = await post("/tools", {
			name: "big",
			type: "calculator",
			description: "x".repeat(1000 * 1000)
		});
		expect(res.status).toBe(422);
	});

	it("refuses __proto__ keys anywhere in the body and pollutes nothing", async () => {
		const top = await post("/tools", '{"__proto__": {"polluted": true}, "name": "p", "type": "calculator"}');
		expect(top.status).toBe(400);
		const nested = await post(
			"/tools",
			'{"name": "p", "type": "calculator", "metadata": {"__proto__": {"polluted": true}}}'
		);
		expect(nested.status).toBe(400);
		expect(nested.body.message).toContain("__proto__");
		expect(({} as Record<string, unknown>).polluted).toBeUndefined();
	});

	it("treats constructor and prototype keys as plain data", async () => {
		const res = await post("/tools", {
			name: "proto_words",
			description: "Words that name prototypes",
			type: "calculator",
			metadata: { constructor: "x", prototype: { a: 1 } }
		});
		expect(res.status).toBe(201);
		expect(res.body.metadata).toEqual({ constructor: "x", prototype: { a: 1 } });
	});

	it("answers 422 for wrong types in every field, never 500", async () => {
		for (const body of [
			calculatorTool("x", { name: 12 }),
			calculatorTool("x", { name: ["a"] }),
			{ name: null, type: null },
			calculatorTool("x", { parameters: "not-an-object" }),
			calculatorTool("x", { parameters: [] }),
			calculatorTool("x", { metadata: { tags: "a" } }),
			calculatorTool("x", { timeout_ms: "5000" }),
			calculatorTool("x", { permissions: { agents: "*" } }),
			calculatorTool("x", { config: { nested: true } }),
			[],
			{}
		]) {
			const res = await post("/tools", body);
			expect([res.status, body]).toEqual([422, body]);
			expect(res.body.type).toBe("VALIDATION_ERROR");
		}
	});

	it("answers 422 for a deeply nested or oversized parameters schema", async () => {
		let deep: Record<string, unknown> = { type: "string" };
		for (let i = 0; i < 20; i++) deep = { type: "object", properties: { a: deep } };
		expect((await post("/tools", calculatorTool("deep", { parameters: deep }))).status).toBe(422);
		const wide = {
			type: "object",
			properties: Object.fromEntries(Array.from({ length: 3000 }, (_, i) => [`p${i}`, { type: "string" }]))
		};
		expect((await post("/tools", calculatorTool("wide", { parameters: wide }))).status).toBe(422);
	});

	it("answers 10,000-character strings in any field with 4xx", async () => {
		const long = "z".repeat(10000);
		for (const body of [
			calculatorTool(long),
			{ name: "x", type: long },
			calculatorTool("x", { description: long }),
			calculatorTool("x", { metadata: { tags: [long] } }),
			calculatorTool("x", { permissions: { agents: [long] } })
		]) {
			const res = await post("/tools", body);
			expect(res.status).toBe(422);
		}
		const path = await http(node.url, "GET", `/api/v1/tools/${long}`, { tenant });
		expect(path.status).toBe(422);
		const query = await http(node.url, "GET", `/api/v1/tools?type=${long}`, { tenant });
		expect(query.status).toBe(422);
		const header = await http(node.url, "GET", "/api/v1/tools", { tenant: long });
		expect(header.status).toBe(400);
	});

	it("answers unknown routes with a JSON 404 and never exposes $node actions", async () => {
		for (const [method, path] of [
			["GET", "/api/v1/nothing-here"],
			["GET", "/api/v1/$node/list"],
			["GET", "/api/v1/$node/services"],
			["POST", "/api/v1/$node/actions"],
			["GET", "/$node/list"],
			["GET", "/api/v1/registry/resolve"],
			["GET", "/index.html"]
		]) {
			const res = await http(node.url, method, path, { tenant });
			expect([method, path, res.status]).toEqual([method, path, 404]);
			expect(res.body).toMatchObject({ code: 404, type: "NOT_FOUND" });
		}
	});

	it("keeps serving after a request with invalid UTF-8 and a wrong content type", async () => {
		const headers = { authorization: `Bearer ${"test-service-token-0123456789"}`, "x-tenant-id": tenant };
		const garbage = await rawRequest(
			node.url,
			"/api/v1/tools",
			"POST",
			{ ...headers, "content-type": "application/json" },
			Buffer.from([0x7b, 0xff, 0xfe, 0x7d])
		);
		expect(garbage.status).toBe(400);
		expect(JSON.parse(garbage.body).type).toBe("INVALID_JSON");
		const text = await rawRequest(
			node.url,
			"/api/v1/tools",
			"POST",
			{ ...headers, "content-type": "text/plain" },
			"name=x"
		);
		expect(text.status).toBe(415);
		const charset = await rawRequest(
			node.url,
			"/api/v1/tools",
			"POST",
			{ ...headers, "content-type": "application/json; charset=klingon" },
			"{}"
		);
		expect(charset.status).toBe(415);
		expect((await http(node.url, "GET", "/health", { token: null })).status).toBe(200);
	});

	it.each([
		["gzip", Buffer.from("not gzip at all")],
		["gzip", zlib.gzipSync('{"name": "truncated"}').subarray(0, 20)],
		["deflate", Buffer.from([0x78, 0x9c, 0xff, 0xff, 0xff])],
		["br", Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff])]
	])("answers a corrupt %s body with 400, authenticated or not", async (encoding, body) => {
		for (const credential of [
			{ authorization: `Bearer ${SERVICE_TOKEN}`, "x-tenant-id": tenant },
			{}
		] as Record<string, string>[]) {
			const headers = { ...credential, "content-type": "application/json", "content-encoding": encoding };
			const res = await rawRequest(node.url, "/api/v1/tools", "POST", headers, body);
			expect(res.status).toBe(400);
			expect(JSON.parse(res.body)).toEqual({
				name: "MoleculerClientError",
				message: "Request body cannot be decoded",
				code: 400,
				type: "INVALID_BODY_ENCODING"
			});
		}
	});

	it("still reads a well-formed compressed body", async () => {
		const headers = {
			authorization: `Bearer ${SERVICE_TOKEN}`,
			"x-tenant-id": tenant,
			"content-type": "application/json",
			"content-encoding": "br"
		};
		const body = zlib.brotliCompressSync(JSON.stringify(calculatorTool("compressed")));
		const res = await rawRequest(node.url, "/api/v1/tools", "POST", headers, body);
		expect(res.status).toBe(201);
	});

	it("answers every error with the documented JSON error body", async () => {
		const res = await http(node.url, "GET", "/api/v1/tools", { token: null });
		expect(res.headers.get("content-type")).toContain("application/json");
		expect(Object.keys(res.body).sort()).toEqual(["code", "message", "name", "type"]);
	});
});

/**
 * Writes `text` on a new connection and resolves the last response the server sent back before it
 * closed (with the statuses of all of them).
 */
function rawExchange(url: string, text: string) {
	const { hostname, port } = new URL(url);
	return new Promise<{ status: number; body: unknown; elapsedMs: number; statuses: number[] }>(
		(resolve, reject) => {
			const started = Date.now();
			const socket = connect(Number(port), hostname, () => socket.write(text));
			let received = "";
			socket.setEncoding("utf8");
			socket.on("data", chunk => (received += chunk));
			socket.on("error", reject);
			socket.on("close", () => {
				const statuses = [...received.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map(match => Number(match[1]));
				const last = received.slice(received.lastIndexOf("HTTP/1.1 "));
				const body = last.slice(last.indexOf("\r\n\r\n") + 4);
				resolve({
					status: statuses.at(-1) ?? 0,
					body: body ? JSON.parse(body) : undefined,
					elapsedMs: Date.now() - started,
					statuses
				});
			});
		}
	);
}

/** A connection that stays open: what the server sent on it so far, and whether it closed it. */
function openConnection(url: string, text: string) {
	const { hostname, port } = new URL(url);
	const connection = {
		received: "",
		closed: false,
		socket: connect(Number(port), hostname, () => connection.socket.write(text))
	};
	connection.socket.setEncoding("utf8");
	connection.socket.on("data", chunk => (connection.received += chunk));
	connection.socket.on("close", () => (connection.closed = true));
	return connection;
}

describe("requests Node refuses before routing", () => {
	const REQUEST_TIMEOUT_MS = 1000;
	let node: TestNode;
	let upstream: Upstream;

	beforeAll(async () => {
		upstream = await Upstream.start((_req, res) => json(res, 200, { ok: true }));
		node = await startNode({
			settings: { requestTimeout: REQUEST_TIMEOUT_MS, outboundAllowHosts: ["127.0.0.1"] }
		});
	});

	afterAll(async () => {
		await node.stop();
		await upstream.close();
	});

	/** A request that stalls after its headers: answered 408 once REQUEST_TIMEOUT_MS has passed. */
	const STALLED =
		"POST /api/v1/tools HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{";

	it("keeps a WebSocket and an MCP event stream open past the request timeout: only their requests must arrive in time", async () => {
		const tenant = "long-lived";
		const ws = new WebSocket(`${node.url.replace(/^http/, "ws")}/ws`, {
			headers: { authorization: `Bearer ${SERVICE_TOKEN}`, "x-tenant-id": tenant }
		});
		let wsClosed = false;
		ws.on("close", () => (wsClosed = true));
		await new Promise((resolve, reject) => ws.once("open", resolve).once("error", reject));
		const mcpHeaders = {
			authorization: `Bearer ${SERVICE_TOKEN}`,
			"x-tenant-id": tenant,
			accept: "application/json, text/event-stream",
			"mcp-protocol-version": LATEST_PROTOCOL_VERSION
		};
		const init = await fetch(`${node.url}/mcp`, {
			method: "POST",
			headers: { ...mcpHeaders, "content-type": "application/json" },
			body: JSON.stringify(INITIALIZE)
		});
		await init.text();
		const sse = openConnection(
			node.url,
			`GET /mcp HTTP/1.1\r\nHost: ${new URL(node.url).host}\r\n` +
				Object.entries({ ...mcpHeaders, "mcp-session-id": init.headers.get("mcp-session-id")! })
					.map(([name, value]) => `${name}: ${value}\r\n`)
					.join("") +
				"\r\n"
		);
		await until("the event stream's headers", () => sse.received.includes("\r\n\r\n"), 5000);
		expect(sse.received).toMatch(/^HTTP\/1\.1 200 .*content-type: text\/event-stream/is);

		// A request stalled after both opened is refused: the deadline check has run past their age.
		expect((await rawExchange(node.url, STALLED)).status).toBe(408);
		expect([wsClosed, sse.closed]).toEqual([false, false]);
		ws.close();
		sse.socket.destroy();
	});

	it("never answers a pipelined request's stall in the place of an earlier request still being answered", async () => {
		const tenant = "pipelined";
		const created = await http(node.url, "POST", "/api/v1/tools", {
			tenant,
			body: {
				name: "held",
				description: "Answers when the test lets it",
				type: "external_api",
				config: { url: upstream.url("/held"), method: "GET" }
			}
		});
		await eventually(async () => {
			const tool = await http(node.url, "GET", `/api/v1/tools/${created.body.id}`, { tenant });
			expect(tool.body.status).toBe("active");
		});
		let release!: () => void;
		const released = new Promise<void>(resolve => (release = resolve));
		upstream.reply = (_req, res) => void released.then(() => json(res, 200, { ok: true }));
		upstream.received = [];

		const call = JSON.stringify({ tool_name: "held", parameters: {} });
		const first = [
			"POST /api/v1/internal/execute HTTP/1.1",
			"Host: x",
			`Authorization: Bearer ${SERVICE_TOKEN}`,
			`X-Tenant-ID: ${tenant}`,
			"Content-Type: application/json",
			`Content-Length: ${Buffer.byteLength(call)}`
		].join("\r\n");
		const res = await rawExchange(node.url, `${first}\r\n\r\n${call}${STALLED}`);
		// The tool ran: a 408 ("did not arrive") would invite the client to run it again. The connection
		// closes without an answer instead, as any connection lost mid-request does.
		expect(res.statuses).toEqual([]);
		await until("the tool ran", () => upstream.hits("/held") === 1, 5000);
		release();
	});

	it("answers a body shorter than its Content-Length with a JSON 408 once the request timeout passes, and serves others meanwhile", async () => {
		const head = [
			"POST /api/v1/tools HTTP/1.1",
			`Host: ${new URL(node.url).host}`,
			`Authorization: Bearer ${SERVICE_TOKEN}`,
			"X-Tenant-ID: slow",
			"Content-Type: application/json",
			"Content-Length: 100"
		].join("\r\n");
		const stalled = rawExchange(node.url, `${head}\r\n\r\n{"name":`);
		const health = await http(node.url, "GET", "/health");
		expect(health.status).toBe(200);
		const res = await stalled;
		expect(res.status).toBe(408);
		expect(res.body).toEqual({
			name: "MoleculerClientError",
			message: `The request did not arrive within ${REQUEST_TIMEOUT_MS} ms`,
			code: 408,
			type: "REQUEST_TIMEOUT"
		});
		// Node checks deadlines every tenth of the timeout: never the five minutes of its default.
		expect(res.elapsedMs).toBeLessThan(REQUEST_TIMEOUT_MS * 3);
	});

	it("answers a keep-alive connection's second request that stalls with a JSON 408 too", async () => {
		const first = `GET /health HTTP/1.1\r\nHost: x\r\n\r\n`;
		const second =
			"POST /api/v1/tools HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{";
		const res = await rawExchange(node.url, first + second);
		expect(res.statuses).toEqual([200, 408]);
		expect(res.body).toMatchObject({ code: 408, type: "REQUEST_TIMEOUT" });
	});

	it("answers headers that never end with a JSON 408", async () => {
		const res = await rawExchange(node.url, "GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ");
		expect(res.status).toBe(408);
		expect(res.body).toMatchObject({ code: 408, type: "REQUEST_TIMEOUT" });
	});

	it("answers a malformed request with a JSON 400", async () => {
		const res = await rawExchange(node.url, "NOT AN HTTP REQUEST\r\n\r\n");
		expect(res.status).toBe(400);
		expect(res.body).toMatchObject({ code: 400, type: "BAD_REQUEST", message: "Malformed HTTP request" });
	});

	it("answers headers over Node's limit with a JSON 431", async () => {
		const res = await rawExchange(
			node.url,
			`GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ${"a".repeat(20000)}\r\n\r\n`
		);
		expect(res.status).toBe(431);
		expect(res.body).toMatchObject({ code: 431, type: "HEADERS_TOO_LARGE" });
	});
});
