import Redis from "ioredis";
import { LATEST_PROTOCOL_VERSION } from "@modelcontextprotocol/sdk/types.js";
import { describeWithRedis, dropPrefix, uniquePrefix } from "../support/backends";
import { eventually } from "../support/eventually";
import { INITIALIZE } from "../support/mcp";
import { SERVICE_TOKEN, startNode, type TestNode } from "../support/node";

jest.setTimeout(60000);

interface SseEvent {
	id?: string;
	data: string;
}

/** Reads SSE events from `res` until `enough` holds or `timeoutMs` passes, then drops the connection. */
async function readEvents(
	res: Response,
	abort: AbortController,
	enough: (events: SseEvent[]) => boolean,
	timeoutMs: number
): Promise<SseEvent[]> {
	const events: SseEvent[] = [];
	const reader = res.body!.getReader();
	const decoder = new TextDecoder();
	const timer = setTimeout(() => abort.abort(), timeoutMs);
	let buffer = "";
	try {
		while (!enough(events)) {
			const { done, value } = await reader.read();
			if (done) break;
			buffer += decoder.decode(value, { stream: true });
			let end: number;
			while ((end = buffer.indexOf("\n\n")) >= 0) {
				const block = buffer.slice(0, end);
				buffer = buffer.slice(end + 2);
				const field = (name: string) =>
					block
						.split("\n")
						.filter(line => line.startsWith(`${name}:`))
						.map(line => line.slice(name.length + 1).trim());
				events.push({ id: field("id")[0], data: field("data").join("\n") });
			}
		}
	} catch {
		// Aborted at the timeout: what arrived so far is the answer.
	} finally {
		clearTimeout(timer);
		abort.abort();
	}
	return events;
}

const answerTo = (id: number) => (event: SseEvent) => event.data.includes(`"id":${id}`);

describeWithRedis("MCP streams resumed on another gateway node sharing Redis", () => {
	const redisUrl = process.env.TEST_REDIS_URL!;
	const prefix = uniquePrefix();
	const tenant = `mcp-resume-${process.pid}`;
	let nodeA: TestNode;
	let nodeB: TestNode;
	let stoppedA = false;
	let redis: Redis;

	const headers = (session?: string, extra: Record<string, string> = {}) => ({
		authorization: `Bearer ${SERVICE_TOKEN}`,
		"x-tenant-id": tenant,
		"content-type": "application/json",
		accept: "application/json, text/event-stream",
		"mcp-protocol-version": LATEST_PROTOCOL_VERSION,
		...(session ? { "mcp-session-id": session } : {}),
		...extra
	});
	const post = (node: TestNode, body: unknown, session?: string, signal?: AbortSignal) =>
		fetch(`${node.url}/mcp`, {
			method: "POST",
			headers: headers(session),
			body: JSON.stringify(body),
			signal
		});

	beforeAll(async () => {
		redis = new Redis(redisUrl);
		// Two gateways with no transporter between them: they share nothing but Redis.
		const options = { services: ["api", "registry", "validator", "executor"], redisUrl, redisPrefix: prefix };
		[nodeA, nodeB] = await Promise.all([
			startNode({ ...options, nodeID: "mcp-a" }),
			startNode({ ...options, nodeID: "mcp-b" })
		]);
	});

	afterAll(async () => {
		await Promise.all([stoppedA ? undefined : nodeA?.stop(), nodeB?.stop(), redis?.quit()]);
		await dropPrefix(redisUrl, prefix);
	});

	it("resumes no session of another tenant, and no id it never issued", async () => {
		const opened = await post(nodeA, INITIALIZE);
		const session = opened.headers.get("mcp-session-id")!;
		await opened.text();
		const asOther = await fetch(`${nodeB.url}/mcp`, {
			method: "POST",
			headers: { ...headers(session), "x-tenant-id": `${tenant}-other` },
			body: JSON.stringify({ jsonrpc: "2.0", id: 2, method: "ping" })
		});
		expect(asOther.status).toBe(404);
		for (const unknown of ["00000000-0000-4000-8000-000000000000", "not-a-session"])
			expect((await post(nodeB, { jsonrpc: "2.0", id: 3, method: "ping" }, unknown)).status).toBe(404);
		// Its own caller still reaches it on B.
		expect((await post(nodeB, { jsonrpc: "2.0", id: 4, method: "ping" }, session)).status).toBe(200);
	});

	it("replays a lost response on another node after the first one stopped; that node carries the session on", async () => {
		const opened = await post(nodeA, INITIALIZE);
		expect(opened.status).toBe(200);
		const session = opened.headers.get("mcp-session-id")!;
		await opened.text();
		expect((await post(nodeA, { jsonrpc: "2.0", method: "notifications/initialized" }, session)).status).toBe(
			202
		);

		// A tool call on node A whose stream is lost right after its priming event.
		const lost = new AbortController();
		// datetime runs in the executor's own thread: no worker pool to warm up first.
		const call = { name: "datetime", arguments: { operation: "now", timezone: "UTC" } };
		const streamed = await post(
			nodeA,
			{ jsonrpc: "2.0", id: 2, method: "tools/call", params: call },
			session,
			lost.signal
		);
		const [primingEvent] = await readEvents(streamed, lost, events => events.length >= 1, 10000);
		expect(primingEvent.id).toMatch(/^\d+$/);

		// Node A stores the answer in the session's log, then goes away.
		const events = `${prefix}mcp-events:{${session}}`;
		// The response carries the request's id; a log message on the same stream would not.
		const stored = async () =>
			(await redis.zrange(events, 0, -1)).some(m => m.includes('"jsonrpc":"2.0","id":2'));
		await eventually(async () => expect(await stored()).toBe(true), 15000);
		await nodeA.stop();
		stoppedA = true;

		// The client reconnects with Last-Event-ID and reaches node B, which never saw the session.
		const reconnect = new AbortController();
		const res = await fetch(`${nodeB.url}/mcp`, {
			method: "GET",
			headers: headers(session, { "last-event-id": primingEvent.id! }),
			signal: reconnect.signal
		});
		expect(res.status).toBe(200);
		const replayed = (await readEvents(res, reconnect, found => found.some(answerTo(2)), 5000)).find(
			answerTo(2)
		);
		expect(replayed).toBeDefined();
		const answer = JSON.parse(replayed!.data);
		expect(answer).toMatchObject({ id: 2, result: { structuredContent: expect.any(Object) } });
		expect(answer.result.isError).toBeUndefined();
		expect(Number(replayed!.id)).toBeGreaterThan(Number(primingEvent.id));

		// Node B now serves the session: a request answers, to its own caller only.
		const listed = await post(nodeB, { jsonrpc: "2.0", id: 3, method: "tools/list" }, session);
		expect(listed.status).toBe(200);
		expect(await listed.text()).toContain('"search_tools"');
		const stranger = await fetch(`${nodeB.url}/mcp`, {
			method: "POST",
			headers: { ...headers(session), "x-tenant-id": `${tenant}-other` },
			body: JSON.stringify({ jsonrpc: "2.0", id: 4, method: "ping" })
		});
		expect(stranger.status).toBe(404);

		// Ending the session on B ends it for every node that has not taken it on yet.
		const ended = await fetch(`${nodeB.url}/mcp`, { method: "DELETE", headers: headers(session) });
		expect(ended.status).toBe(200);
		const afterwards = await post(nodeB, { jsonrpc: "2.0", id: 5, method: "ping" }, session);
		expect(afterwards.status).toBe(404);
	});
});
