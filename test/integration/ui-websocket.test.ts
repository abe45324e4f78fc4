import { randomUUID } from "crypto";
import { once } from "events";
import type { IncomingMessage } from "http";
import WebSocket, { type ClientOptions } from "ws";
import type { TaskMessage } from "../../lib/tasks/task-queue";
import { taskFrame, type TaskUpdate } from "../../lib/tasks/task-events";
import type { UiSockets } from "../../lib/ui-sockets";
import { framesChannel } from "../../lib/outbox/redis-outbox";
import { connectRedis } from "../../lib/redis";
import { OwnRedisServer } from "../support/redis-server";
import { BACKENDS, describeWithRedis, dropPrefix, uniquePrefix } from "../support/backends";
import { eventually, until } from "../support/eventually";
import { ManualClock } from "../support/manual-clock";
import { recordUpdate } from "../support/tasks";
import { http, SERVICE_TOKEN, startNode, type TestNode } from "../support/node";

// The executor is left out: these suites record task updates in the outbox themselves.
const SERVICES = ["api", "keys", "registry", "validator"];

let counter = 0;
const newTenant = () => `ui-${process.pid}-${++counter}`;

type Frame = Record<string, any>;

/** A connected UI client that records every frame it receives. */
class UiClient {
	readonly frames: Frame[] = [];
	readonly closed: Promise<{ code: number; reason: string }>;

	constructor(readonly socket: WebSocket) {
		socket.on("message", data => this.frames.push(JSON.parse(data.toString())));
		this.closed = new Promise(resolve =>
			socket.once("close", (code, reason) => resolve({ code, reason: reason.toString() }))
		);
	}

	/** The first frame, received or still to come, that matches. */
	frame(match: (frame: Frame) => boolean, timeoutMs = 5000): Promise<Frame> {
		return eventually(
			async () => {
				const found = this.frames.find(match);
				if (!found) throw new Error(`no matching frame among the ${this.frames.length} received`);
				return found;
			},
			timeoutMs,
			10
		);
	}

	close(): Promise<unknown> {
		// A paused socket would never read the server's answer to the close.
		this.socket.resume();
		this.socket.close();
		return this.closed;
	}
}

const wsUrl = (node: TestNode, path: string) => node.url.replace(/^http/, "ws") + path;

type HeaderMap = Record<string, string>;

/** Opens a UI socket; rejects when the upgrade is refused. */
function connect(node: TestNode, path: string, headers: HeaderMap = {}, options: ClientOptions = {}) {
	const socket = new WebSocket(wsUrl(node, path), { headers, ...options });
	const client = new UiClient(socket);
	return new Promise<UiClient>((resolve, reject) => {
		socket.once("open", () => resolve(client));
		socket.once("error", reject);
	});
}

interface Refusal {
	status: number;
	headers: IncomingMessage["headers"];
	body: any;
}

/** Attempts an upgrade expected to be refused: the HTTP status and JSON body the client saw. */
function refused(node: TestNode, path: string, headers: HeaderMap = {}) {
	const socket = new WebSocket(wsUrl(node, path), { headers });
	return new Promise<Refusal>((resolve, reject) => {
		socket.once("open", () => reject(new Error(`the upgrade to ${path} was accepted`)));
		socket.once("error", reject);
		socket.once("unexpected-response", (_req, res) => {
			let text = "";
			res.setEncoding("utf8");
			res.on("data", chunk => (text += chunk));
			res.on("end", () => resolve({ status: res.statusCode!, headers: res.headers, body: JSON.parse(text) }));
		});
	});
}

const uiSocketsOf = (node: TestNode) =>
	(node.broker.getLocalService("api") as unknown as { uiSockets: UiSockets }).uiSockets;

/** The gateway's count of connected clients; it settles once earlier clients' closes are processed. */
const expectConnected = (node: TestNode, count: number) =>
	eventually(async () => expect(uiSocketsOf(node).size).toBe(count), 2000, 10);

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

const task = (tenant: string, extra: Partial<TaskMessage> = {}): TaskMessage => {
	const now = new Date().toISOString();
	return {
		task_id: randomUUID(),
		tenant_id: tenant,
		created_at: now,
		updated_at: now,
		status: "completed",
		type: "tool_execution",
		priority: 5,
		metadata: { global_task_id: "global-1", execution_id: randomUUID() },
		payload: { tool_id: randomUUID(), parameters: { expression: "6*7" } },
		result: { value: 42 },
		attempts: 1,
		...extra
	};
};

describe.each(BACKENDS)("UI WebSocket GET /ws on the $name store", ({ redisUrl }) => {
	let node: TestNode;
	const prefix = uniquePrefix();
	const open: UiClient[] = [];

	const keyFor = async (tenant: string, scopes: string[]) => {
		const body = { tenant_id: tenant, scopes };
		const res = await http(node.url, "POST", "/api/v1/keys", { tenant: "ops", body });
		expect(res.status).toBe(201);
		return res.body.api_key as string;
	};
	const track = async (pending: Promise<UiClient>) => {
		const client = await pending;
		open.push(client);
		return client;
	};
	const serviceClient = (tenant: string) =>
		track(connect(node, "/ws", { ...bearer(SERVICE_TOKEN), "x-tenant-id": tenant }));
	const call = (method: string, path: string, tenant: string, body?: unknown) =>
		http(node.url, method, `/api/v1${path}`, { tenant, body });

	beforeAll(async () => {
		node = await startNode({ services: SERVICES, redisUrl, redisPrefix: prefix });
	});

	afterEach(async () => {
		await Promise.all(open.splice(0).map(client => client.close()));
	});

	afterAll(async () => {
		await node.stop();
		if (redisUrl) await dropPrefix(redisUrl, prefix);
	});

	describe("authentication at upgrade", () => {
		it("accepts the service token with X-Tenant-ID, or both in the query", async () => {
			const tenant = newTenant();
			await serviceClient(tenant);
			const query = `/ws?token=${encodeURIComponent(SERVICE_TOKEN)}&tenant_id=${tenant}`;
			const viaQuery = await track(connect(node, query));
			expect(viaQuery.socket.readyState).toBe(WebSocket.OPEN);
			await expectConnected(node, 2);
		});

		it("accepts an API key in the Authorization header or the query", async () => {
			const apiKey = await keyFor(newTenant(), ["tools:read", "tools:write"]);
			await track(connect(node, "/ws", bearer(apiKey)));
			await track(connect(node, `/ws?token=${encodeURIComponent(apiKey)}`));
			await expectConnected(node, 2);
		});

		const service = bearer(SERVICE_TOKEN);
		it.each([
			["no credential", "/ws", {}, 401, "UNAUTHORIZED"],
			["a wrong token", "/ws", { ...bearer("wrong"), "x-tenant-id": "t" }, 401, "UNAUTHORIZED"],
			["a wrong token in the query", "/ws?token=wrong&tenant_id=t", {}, 401, "UNAUTHORIZED"],
			["the service token without a tenant", "/ws", service, 400, "TENANT_REQUIRED"],
			["the service token with a bad tenant", "/ws?tenant_id=a%20b", service, 400, "INVALID_TENANT"]
		])("refuses %s with its HTTP status and opens no socket", async (_case, path, headers, status, type) => {
			const res = await refused(node, path, headers);
			expect(res.status).toBe(status);
			expect(res.headers["content-type"]).toMatch(/^application\/json/);
			expect(res.body).toMatchObject({ code: status, type });
			await expectConnected(node, 0);
		});

		it("refuses with 403 a key without tools:read, and a key naming another tenant", async () => {
			const tenant = newTenant();
			const executeOnly = await keyFor(tenant, ["tools:execute"]);
			const res = await refused(node, "/ws", bearer(executeOnly));
			expect(res.status).toBe(403);
			expect(res.body).toMatchObject({ code: 403, type: "FORBIDDEN" });
			const reader = await keyFor(tenant, ["tools:read"]);
			expect((await refused(node, `/ws?token=${reader}&tenant_id=${newTenant()}`)).status).toBe(403);
			await expectConnected(node, 0);
		});

		it("refuses upgrades on any other path with 404", async () => {
			const headers = { ...bearer(SERVICE_TOKEN), "x-tenant-id": newTenant() };
			for (const path of ["/api/v1/tools", "/ws/extra", "/"]) {
				const res = await refused(node, path, headers);
				expect(res.status).toBe(404);
				expect(res.body.type).toBe("NOT_FOUND");
			}
			await expectConnected(node, 0);
			// Plain HTTP on the same server is untouched.
			expect((await call("GET", "/tools", newTenant())).status).toBe(200);
		});
	});

	describe("tool events", () => {
		it("sends a tenant only its own tool events, secrets masked; global ones reach everyone", async () => {
			const tenantA = newTenant();
			const tenantB = newTenant();
			const clientA = await track(connect(node, "/ws", bearer(await keyFor(tenantA, ["tools:read"]))));
			const clientB = await serviceClient(tenantB);

			const created = await call("POST", "/tools", tenantA, {
				name: "weather_lookup",
				description: "Current weather for a city",
				type: "external_api",
				config: { url: "https://api.example.com/weather", method: "GET", headers: { "X-Api-Key": "s3cret" } }
			});
			expect(created.status).toBe(201);
			const id = created.body.id;
			expect((await call("PATCH", `/tools/${id}`, tenantA, { description: "v2" })).status).toBe(200);
			expect((await call("POST", `/tools/${id}/validate`, tenantA)).status).toBe(200);
			expect((await call("DELETE", `/tools/${id}`, tenantA)).status).toBe(204);

			const ofTool = (event: string) => (frame: Frame) => frame.event === event && frame.data.tool.id === id;
			const registered = await clientA.frame(ofTool("tool_registered"));
			expect(registered).toEqual({
				event: "tool_registered",
				tenant_id: tenantA,
				timestamp: expect.any(String),
				data: { tool: created.body }
			});
			expect(Date.parse(registered.timestamp)).not.toBeNaN();
			expect(registered.data.tool.config.headers).toEqual({ "X-Api-Key": "********" });
			const updated = await clientA.frame(ofTool("tool_updated"));
			expect(updated.data.tool).toMatchObject({ version: 2, description: "v2" });
			expect(updated.data.tool.config.headers).toEqual({ "X-Api-Key": "********" });
			await clientA.frame(ofTool("tool_validation_completed"));
			await clientA.frame(ofTool("tool_deleted"));
			expect(JSON.stringify(clientA.frames)).not.toContain("s3cret");

			// A global tool's event after tenant A's: once B has it, any frame of A sent to B would have arrived.
			const global = await call("POST", "/tools", "*", {
				name: `ui_global_${++counter}`,
				description: "Wall clock",
				type: "datetime"
			});
			expect(global.status).toBe(201);
			const ofGlobal = (frame: Frame) =>
				frame.event === "tool_registered" && frame.data.tool.id === global.body.id;
			for (const client of [clientA, clientB]) {
				const frame = await client.frame(ofGlobal);
				expect(frame).toMatchObject({ tenant_id: "*", data: { tool: { tenant_id: "*" } } });
			}
			expect(clientB.frames.filter(frame => frame.tenant_id === tenantA)).toEqual([]);
			expect((await call("DELETE", `/tools/${global.body.id}`, "*")).status).toBe(204);
		});
	});

	describe("task events", () => {
		it("sends taskFrame(update) to the task's tenant only", async () => {
			const tenantA = newTenant();
			const tenantB = newTenant();
			const clientA = await serviceClient(tenantA);
			const clientB = await track(connect(node, `/ws?token=${await keyFor(tenantB, ["tools:read"])}`));

			const completed: TaskUpdate = { event: "task_completed", task: task(tenantA), execution_time_ms: 12 };
			const progress: TaskUpdate = {
				event: "task_status_update",
				task: task(tenantA, { status: "processing", result: undefined }),
				message: "retrying in 2000 ms"
			};
			const failed: TaskUpdate = {
				event: "task_failed",
				task: task(tenantA, {
					status: "failed",
					result: undefined,
					error: { message: "boom", type: "tool_error" }
				})
			};
			for (const update of [progress, completed, failed]) {
				await recordUpdate(node, update);
				const frame = await clientA.frame(f => f.task_id === update.task.task_id);
				expect(frame).toEqual({ ...taskFrame(update), timestamp: expect.any(String) });
				expect(Date.parse(frame.timestamp)).not.toBeNaN();
			}
			const taskEvents = clientA.frames.filter(frame => frame.task_id).map(frame => frame.event);
			expect(taskEvents).toEqual(["task_status_update", "task_completed", "task_failed"]);

			// B's own task after A's: once B has it, any frame of A sent to B would have arrived.
			const own: TaskUpdate = { event: "task_completed", task: task(tenantB) };
			await recordUpdate(node, own);
			await clientB.frame(frame => frame.task_id === own.task.task_id);
			expect(clientB.frames.filter(frame => frame.tenant_id === tenantA)).toEqual([]);
		});
	});

	describe("robustness", () => {
		it("closes a client sending over 64 KiB with 1009 and keeps serving the others", async () => {
			const tenant = newTenant();
			const flooder = await serviceClient(tenant);
			const bystander = await serviceClient(tenant);
			flooder.socket.send("x".repeat(64 * 1024 + 1));
			expect((await flooder.closed).code).toBe(1009);

			const update: TaskUpdate = { event: "task_completed", task: task(tenant) };
			await recordUpdate(node, update);
			await bystander.frame(frame => frame.task_id === update.task.task_id);
			await expectConnected(node, 1);
			const newcomer = await serviceClient(tenant);
			expect(newcomer.socket.readyState).toBe(WebSocket.OPEN);
		});

		it("answers anything a client sends with a read-only error and stays up", async () => {
			const tenant = newTenant();
			const client = await serviceClient(tenant);
			client.socket.send("{not json");
			client.socket.send(Buffer.from([0xff, 0x00, 0xfe]));
			client.socket.send(JSON.stringify({ event: "tool_deleted", tenant_id: "*" }));
			const replies = () => client.frames.filter(frame => frame.error);
			await eventually(async () => expect(replies()).toEqual(Array(3).fill({ error: "read-only" })));

			const update: TaskUpdate = { event: "task_completed", task: task(tenant) };
			await recordUpdate(node, update);
			await client.frame(frame => frame.task_id === update.task.task_id);
			expect(client.socket.readyState).toBe(WebSocket.OPEN);
			expect((await http(node.url, "GET", "/health", { token: null })).status).toBe(200);
		});
	});
});

/** A gateway with tuned UI socket settings for one describe block; its clients close after each test. */
function tunedGateway(settings: Record<string, unknown>) {
	const gateway = { node: undefined as unknown as TestNode, open: [] as UiClient[] };
	beforeAll(async () => {
		gateway.node = await startNode({ services: SERVICES, settings });
	});
	afterEach(async () => {
		await Promise.all(gateway.open.splice(0).map(client => client.close()));
	});
	afterAll(() => gateway.node.stop());
	return gateway;
}

const serviceHeaders = (tenant: string) => ({ ...bearer(SERVICE_TOKEN), "x-tenant-id": tenant });

describe("UI WebSocket rate limit and backpressure", () => {
	const gateway = tunedGateway({
		tenantRateLimit: 3,
		tenantRateWindowMs: 60000,
		uiMaxBufferedBytes: 1024 * 1024
	});
	const serviceClient = async (tenant: string) => {
		const client = await connect(gateway.node, "/ws", serviceHeaders(tenant));
		gateway.open.push(client);
		return client;
	};

	it("counts upgrades against the tenant's rate limit (429 with Retry-After)", async () => {
		const tenant = newTenant();
		for (let i = 0; i < 3; i++) await serviceClient(tenant);
		const res = await refused(gateway.node, "/ws", serviceHeaders(tenant));
		expect(res.status).toBe(429);
		expect(res.body).toMatchObject({ code: 429, type: "RATE_LIMITED" });
		expect(Number(res.headers["retry-after"])).toBeGreaterThanOrEqual(1);
		await serviceClient(newTenant());
	});

	it("tells whether a tenant's frames would reach anyone, so no frame is built for nobody", async () => {
		const tenant = newTenant();
		const sockets = uiSocketsOf(gateway.node);
		expect(sockets.reaches(tenant)).toBe(false);
		expect(sockets.publish(tenant, { event: "nobody" })).toBe(0);
		const client = await serviceClient(tenant);
		expect(sockets.reaches(tenant)).toBe(true);
		expect(sockets.reaches(newTenant())).toBe(false);
		expect(sockets.publish(tenant, { event: "somebody" })).toBe(1);
		await client.frame(frame => frame.event === "somebody");
		expect(client.frames.some(frame => frame.event === "nobody")).toBe(false);
	});

	it("closes a client that stops reading (1013) without holding back the others", async () => {
		const tenant = newTenant();
		const slow = await serviceClient(tenant);
		const fast = await serviceClient(tenant);
		slow.socket.pause();
		const sockets = uiSocketsOf(gateway.node);
		const payload = "y".repeat(256 * 1024);
		let sent = 0;
		let reached = 2;
		// Kernel buffers absorb an unknown amount first: publish until the gateway gives up on `slow`.
		while (reached === 2 && sent < 400) {
			const seq = sent++;
			reached = sockets.publish(tenant, { event: "bulk", seq, payload });
			// `fast` reads each frame before the next is published, so it never falls behind.
			await fast.frame(frame => frame.seq === seq);
		}
		expect(reached).toBe(1);
		expect(sockets.publish(tenant, { event: "bulk", seq: sent++, payload })).toBe(1);
		slow.socket.resume();
		expect(await slow.closed).toEqual({ code: 1013, reason: "Slow consumer" });
		expect(slow.frames.length).toBeLessThan(sent - 1);
		await fast.frame(frame => frame.seq === sent - 1);
		expect(fast.frames.filter(frame => frame.event === "bulk")).toHaveLength(sent);
	});
});

describeWithRedis("UI WebSocket task frames from Redis", () => {
	const redisUrl = process.env.TEST_REDIS_URL!;
	const prefix = uniquePrefix();
	let node: TestNode;
	let redis: ReturnType<typeof connectRedis>;
	const open: UiClient[] = [];
	const serviceClient = async (tenant: string) => {
		const client = await connect(node, "/ws", serviceHeaders(tenant));
		open.push(client);
		return client;
	};
	/** Nodes subscribed to the frames channel: every recorded frame is sent to each of them. */
	const subscribers = async () => {
		const [, count] = (await redis.pubsub("NUMSUB", framesChannel(prefix))) as [string, number];
		return count;
	};

	beforeAll(async () => {
		node = await startNode({ services: SERVICES, redisUrl, redisPrefix: prefix });
		redis = connectRedis(redisUrl);
	});

	afterAll(async () => {
		await Promise.all(open.map(client => client.close()));
		await node.stop();
		await redis.quit();
		await dropPrefix(redisUrl, prefix);
	});

	it("takes them only while a UI client is connected, from before its socket opens", async () => {
		expect(await subscribers()).toBe(0);
		const tenant = newTenant();
		const client = await serviceClient(tenant);
		expect(await subscribers()).toBe(1);
		// Recorded as soon as the socket is open: it reaches the client.
		const update: TaskUpdate = { event: "task_completed", task: task(tenant) };
		await recordUpdate(node, update);
		await client.frame(frame => frame.task_id === update.task.task_id);
		await client.close();
		await eventually(async () => expect(await subscribers()).toBe(0), 2000, 10);
		const again = await serviceClient(tenant);
		expect(await subscribers()).toBe(1);
		const later: TaskUpdate = { event: "task_completed", task: task(tenant) };
		await recordUpdate(node, later);
		await again.frame(frame => frame.task_id === later.task.task_id);
	});

	it("stops taking them once Redis is back when the last client left while it was away", async () => {
		const own = await OwnRedisServer.start();
		const ownPrefix = uniquePrefix();
		const gateway = await startNode({ services: SERVICES, redisUrl: own.url, redisPrefix: ownPrefix });
		const subscribersOfOwn = async () => {
			const client = connectRedis(own.url);
			try {
				return ((await client.pubsub("NUMSUB", framesChannel(ownPrefix))) as [string, number])[1];
			} finally {
				await client.quit();
			}
		};
		try {
			const client = await connect(gateway, "/ws", serviceHeaders(newTenant()));
			expect(await subscribersOfOwn()).toBe(1);
			const api = gateway.broker.getLocalService("api") as unknown as {
				logger: { warn(...args: unknown[]): void };
			};
			const warned = jest.spyOn(api.logger, "warn");
			await own.kill();
			// The gateway's UNSUBSCRIBE fails while Redis is away: its subscription must not come back with Redis.
			await client.close();
			await until(
				"the gateway's UNSUBSCRIBE to fail",
				() => warned.mock.calls.some(([message]) => String(message).includes("UI's task frames")),
				15000
			);
			await own.resume();
			await eventually(async () => expect(await subscribersOfOwn()).toBe(0), 15000, 50);
		} finally {
			await gateway.stop();
			await own.kill();
		}
	});
});

describe("UI WebSocket heartbeat", () => {
	// The heartbeat runs on this clock: the test moves it instead of waiting for pings.
	const clock = new ManualClock();
	const gateway = tunedGateway({ uiHeartbeatMs: 250, clock });

	it("drops a client that stops answering pings and keeps one that answers", async () => {
		const connectTo = async (options: ClientOptions) => {
			const client = await connect(gateway.node, "/ws", serviceHeaders(newTenant()), options);
			gateway.open.push(client);
			return client;
		};
		/** A heartbeat: both pinged, then `alive` answered (its pong precedes the reply to a later frame). */
		const heartbeat = async (...pinged: UiClient[]) => {
			const pings = Promise.all(pinged.map(client => once(client.socket, "ping")));
			await clock.advance(250);
			await pings;
			const replies = alive.frames.length;
			alive.socket.send("after the pong");
			await until("the reply to a frame sent after the pong", () => alive.frames.length > replies, 2000, 10);
		};
		const dead = await connectTo({ autoPong: false });
		const alive = await connectTo({});
		await heartbeat(dead, alive);
		// The next ping finds `dead`'s unanswered: terminated, not closed, since a peer that does not
		// answer pings would not answer a close either.
		await heartbeat(alive);
		expect((await dead.closed).code).toBe(1006);
		// Several heartbeats later the responsive client is still there.
		for (let i = 0; i < 3; i++) await heartbeat(alive);
		expect(alive.socket.readyState).toBe(WebSocket.OPEN);
		await expectConnected(gateway.node, 1);
	});
});
