import { Agent, request } from "http";
import WebSocket from "ws";
import { eventually } from "../support/eventually";
import { http, SERVICE_TOKEN } from "../support/node";
import { ServiceProcess } from "../support/process-node";

/** The promise: an idle gateway exits this soon after SIGTERM. */
const EXIT_WITHIN_MS = 2000;

const tenant = "shutdown";
const auth = { authorization: `Bearer ${SERVICE_TOKEN}`, "x-tenant-id": tenant };

/** A GET over `agent` whose connection then stays open, idle, in the agent's pool. */
const keepAliveGet = (url: string, agent: Agent) =>
	new Promise<number>((resolve, reject) => {
		const req = request(`${url}/health`, { agent }, res => {
			res.resume();
			res.on("end", () => resolve(res.statusCode ?? 0));
		});
		req.on("error", reject);
		req.end();
	});

const mcpPost = (url: string, body: unknown, session?: string) =>
	fetch(`${url}/mcp`, {
		method: "POST",
		headers: {
			...auth,
			"content-type": "application/json",
			accept: "application/json, text/event-stream",
			...(session ? { "mcp-session-id": session } : {})
		},
		body: JSON.stringify(body)
	});

/** An MCP session with its standalone SSE stream (`GET /mcp`) open. */
async function openMcpStream(url: string): Promise<ReadableStreamDefaultReader<Uint8Array>> {
	const init = await mcpPost(url, {
		jsonrpc: "2.0",
		id: 1,
		method: "initialize",
		params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "test", version: "1" } }
	});
	expect(init.status).toBe(200);
	const session = init.headers.get("mcp-session-id")!;
	await init.text();
	await (await mcpPost(url, { jsonrpc: "2.0", method: "notifications/initialized" }, session)).text();
	const stream = await fetch(`${url}/mcp`, {
		headers: { ...auth, accept: "text/event-stream", "mcp-session-id": session }
	});
	expect(stream.status).toBe(200);
	return stream.body!.getReader();
}

describe("gateway node SIGTERM, started as `npm start` starts it", () => {
	let node: ServiceProcess;

	afterAll(async () => {
		await node?.stop();
	});

	it("exits 0 within 2 s with a keep-alive connection, a /ws client and an MCP stream open", async () => {
		// A gateway node as the README's cluster runs it (SERVICES=api,registry,validator,notifier).
		node = new ServiceProcess({ SERVICE_TOKEN, EMBEDDINGS: "off" }, [
			"api",
			"registry",
			"validator",
			"notifier"
		]);
		const url = await node.url();
		await eventually(
			async () => expect((await http(url, "GET", "/api/v1/tools", { tenant })).status).toBe(200),
			30000
		);

		const agent = new Agent({ keepAlive: true });
		expect(await keepAliveGet(url, agent)).toBe(200);
		const socket = new WebSocket(`${url.replace("http", "ws")}/ws`, { headers: auth });
		await new Promise((resolve, reject) => {
			socket.once("open", resolve);
			socket.once("error", reject);
		});
		const wsClosed = new Promise(resolve => socket.once("close", resolve));
		const mcpStream = await openMcpStream(url);
		const mcpEnded = mcpStream.read().then(
			function drain(chunk): Promise<void> | void {
				if (!chunk.done) return mcpStream.read().then(drain);
			},
			() => undefined
		);

		const signalled = Date.now();
		node.child.kill("SIGTERM");
		const exit = await node.exited;
		const tookMs = Date.now() - signalled;

		expect(exit).toEqual({ code: 0, signal: null });
		expect(tookMs).toBeLessThan(EXIT_WITHIN_MS);
		// Every long-lived client was told the end, none was left hanging.
		await wsClosed;
		await mcpEnded;
		expect(node.output).not.toMatch(/GracefulStopTimeoutError/);
		agent.destroy();
	}, 90000);
});
