import { randomUUID } from "crypto";
import type { TaskMessage } from "../../lib/tasks/task-queue";
import type { TaskUpdate } from "../../lib/tasks/task-events";
import type { NotifierState } from "../../services/notifier.service";
import { connectRedis } from "../../lib/redis";
import { framesChannel } from "../../lib/outbox/redis-outbox";
import { BACKENDS, describeWithRedis, dropPrefix, uniquePrefix } from "../support/backends";
import { eventually, until } from "../support/eventually";
import { ManualClock } from "../support/manual-clock";
import { OrchestratorStandIn } from "../support/orchestrator";
import { recordUpdate } from "../support/tasks";
import { SERVICE_TOKEN, startNode, type TestNode } from "../support/node";

const FAST = {
	initialBackoffMs: 100,
	maxBackoffMs: 1000,
	pingIntervalMs: 200,
	authTimeoutMs: 2000,
	leaderTtlMs: 1500
};
const ISO_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;

const taskMessage = (extra: Partial<TaskMessage> = {}): TaskMessage => ({
	task_id: randomUUID(),
	tenant_id: "acme",
	created_at: new Date().toISOString(),
	updated_at: new Date().toISOString(),
	status: "processing",
	type: "tool_execution",
	priority: 0,
	metadata: { agent_id: "agent-1", execution_id: "exec-1", source: "api" },
	payload: {
		tool_id: "tool-1",
		tool_name: "calculator",
		tool_type: "calculator",
		parameters: {},
		timeout_ms: 5000
	},
	attempts: 1,
	...extra
});

const statusUpdate = (message: string): TaskUpdate => ({
	event: "task_status_update",
	task: taskMessage(),
	message
});

describe("notifier", () => {
	let nodes: TestNode[] = [];
	let standIns: OrchestratorStandIn[] = [];
	let prefixes: { redisUrl: string; prefix: string }[] = [];

	const startNotifier = async (settings: object, redisUrl?: string, redisPrefix?: string) => {
		const node = await startNode({
			services: ["notifier"],
			redisUrl,
			redisPrefix,
			settings: { ...FAST, ...settings }
		});
		nodes.push(node);
		return node;
	};
	const stopNode = async (node: TestNode) => {
		nodes = nodes.filter(other => other !== node);
		await node.stop();
	};
	const standIn = async (port?: number) => {
		const started = await OrchestratorStandIn.start(port);
		standIns.push(started);
		return started;
	};
	const stateOf = (node: TestNode) => node.broker.call<NotifierState>("notifier.state");
	const prefixFor = (redisUrl: string) => {
		const prefix = uniquePrefix();
		prefixes.push({ redisUrl, prefix });
		return prefix;
	};

	afterEach(async () => {
		await Promise.all(nodes.map(node => node.stop()));
		await Promise.all(standIns.map(server => server.stop()));
		await Promise.all(prefixes.map(({ redisUrl, prefix }) => dropPrefix(redisUrl, prefix)));
		nodes = [];
		standIns = [];
		prefixes = [];
	});

	describe.each(BACKENDS)("on $name", ({ redisUrl }) => {
		const prefix = () => (redisUrl ? prefixFor(redisUrl) : undefined);

		it("authenticates with the handshake and sends updates in the documented shape", async () => {
			const orchestrator = await standIn();
			const node = await startNotifier({ wsUrl: orchestrator.url }, redisUrl, prefix());
			await eventually(async () =>
				expect(await stateOf(node)).toMatchObject({ authenticated: true, leader: true })
			);
			expect(orchestrator.connections[0].messages[0]).toEqual({
				service_token: SERVICE_TOKEN,
				service_name: "tool-registry"
			});

			const running = taskMessage({ metadata: { execution_id: "exec-1", global_task_id: "global-7" } });
			const completed = taskMessage({ status: "completed", result: { value: 2 } });
			const failed = taskMessage({
				status: "failed",
				error: { type: "timeout", message: "the tool did not finish within 5000 ms" }
			});
			const updates: TaskUpdate[] = [
				{ event: "task_status_update", task: running, message: "started" },
				{ event: "task_completed", task: completed, execution_time_ms: 12 },
				{ event: "task_failed", task: failed }
			];
			for (const update of updates) await recordUpdate(node, update);

			await eventually(async () => expect(orchestrator.events).toHaveLength(3));
			const envelope = (task: TaskMessage, globalTaskId: string | null) => ({
				service: "tool-registry",
				task_id: task.task_id,
				global_task_id: globalTaskId,
				tenant_id: "acme",
				timestamp: expect.any(String)
			});
			expect(orchestrator.events).toEqual([
				{
					event: "task_status_update",
					...envelope(running, "global-7"),
					data: { status: "processing", details: { tool_id: "tool-1", message: "started" } }
				},
				{
					event: "task_completed",
					...envelope(completed, null),
					data: { tool_id: "tool-1", execution_id: "exec-1", result: { value: 2 }, execution_time_ms: 12 }
				},
				{
					event: "task_failed",
					...envelope(failed, null),
					data: { error: "the tool did not finish within 5000 ms", error_type: "timeout", tool_id: "tool-1" }
				}
			]);
			for (const event of orchestrator.events) {
				expect(event.timestamp).toMatch(ISO_UTC);
				expect(new Date(event.timestamp).toISOString()).toBe(event.timestamp);
			}
			expect(await stateOf(node)).toMatchObject({
				outbox_size: 0,
				reconnect_attempts: 0,
				next_retry_ms: null
			});
		});

		it("keeps updates in the outbox through an outage, then sends each once, in order", async () => {
			const before = await standIn();
			const node = await startNotifier({ wsUrl: before.url }, redisUrl, prefix());
			await eventually(async () => expect(await stateOf(node)).toMatchObject({ authenticated: true }));
			await before.stop();
			await eventually(async () => expect(await stateOf(node)).toMatchObject({ connected: false }));

			const updates = Array.from({ length: 20 }, (_, i) => statusUpdate(`update ${i}`));
			for (const update of updates) await recordUpdate(node, update);
			expect(await stateOf(node)).toMatchObject({ outbox_size: 20, authenticated: false });

			const after = await standIn(before.port);
			await eventually(async () => expect(after.events).toHaveLength(20));
			// Frames go out in order on one connection: a duplicate sent late would arrive before this one.
			const last = statusUpdate("after the outage");
			await recordUpdate(node, last);
			await eventually(async () => expect(after.events).toHaveLength(21));
			expect(before.events).toEqual([]);
			expect(after.events.map(event => event.data.details.message)).toEqual(
				[...updates, last].map(update => update.message)
			);
			expect(after.events.map(event => event.task_id)).toEqual(
				[...updates, last].map(update => update.task.task_id)
			);
			expect(await stateOf(node)).toMatchObject({ outbox_size: 0, authenticated: true });
		});

		it("does not connect without a URL and keeps every update in the outbox", async () => {
			const clock = new ManualClock();
			const node = await startNotifier({ clock }, redisUrl, prefix());
			for (let i = 0; i < 3; i++) await recordUpdate(node, statusUpdate(`update ${i}`));
			// Past every backoff and lock renewal: nothing is even scheduled.
			await clock.advance(FAST.maxBackoffMs + FAST.leaderTtlMs);
			expect(clock.pending).toBe(0);
			expect(await stateOf(node)).toEqual({
				connected: false,
				authenticated: false,
				// The only notifier of an in-memory outbox leads; on Redis one without a URL never takes the lock.
				leader: !redisUrl,
				outbox_size: 3,
				outbox_dropped: 0,
				reconnect_attempts: 0,
				next_retry_ms: null
			});
		});
	});

	it("drops the oldest updates once the outbox is full and sends the newest", async () => {
		const orchestrator = await standIn();
		const port = orchestrator.port;
		await orchestrator.stop();
		const node = await startNotifier({ wsUrl: `ws://127.0.0.1:${port}`, outboxMax: 5 });
		const updates = Array.from({ length: 8 }, (_, i) => statusUpdate(`update ${i}`));
		for (const update of updates) await recordUpdate(node, update);
		expect(await stateOf(node)).toMatchObject({ outbox_size: 5, outbox_dropped: 3 });

		const back = await standIn(port);
		await eventually(async () => expect(back.events).toHaveLength(5));
		expect(back.events.map(event => event.data.details.message)).toEqual(
			updates.slice(3).map(update => update.message)
		);
	});

	it("retries a refused handshake with growing delays, sends nothing until accepted, resets", async () => {
		const orchestrator = await standIn();
		orchestrator.token = "another-token";
		const settings = {
			wsUrl: orchestrator.url,
			initialBackoffMs: 200,
			backoffFactor: 1.5,
			maxBackoffMs: 600
		};
		const node = await startNotifier(settings);
		await recordUpdate(node, statusUpdate("while refused"));

		await eventually(async () => expect(orchestrator.connections.length).toBeGreaterThanOrEqual(6), 8000);
		const attempts = orchestrator.connections.map(connection => connection.at);
		const gaps = attempts.slice(1, 6).map((at, i) => at - attempts[i]);
		[200, 300, 450, 600, 600].forEach((expected, i) => {
			expect(gaps[i]).toBeGreaterThanOrEqual(expected - 5);
			expect(gaps[i]).toBeLessThan(expected + 150);
		});
		const state = await stateOf(node);
		expect(state).toMatchObject({ authenticated: false, outbox_size: 1 });
		expect(state.reconnect_attempts).toBeGreaterThanOrEqual(5);
		// Only the handshake went to an orchestrator that had not authenticated the notifier.
		for (const connection of orchestrator.connections) expect(connection.messages).toHaveLength(1);

		orchestrator.token = SERVICE_TOKEN;
		await eventually(async () => expect(orchestrator.events).toHaveLength(1), 5000);
		expect(orchestrator.events[0].data.details.message).toBe("while refused");
		expect(await stateOf(node)).toMatchObject({
			authenticated: true,
			reconnect_attempts: 0,
			next_retry_ms: null
		});

		const count = orchestrator.connections.length;
		const droppedAt = Date.now();
		orchestrator.connections[count - 1].socket.terminate();
		await eventually(async () => expect(orchestrator.connections.length).toBe(count + 1));
		const delay = orchestrator.connections[count].at - droppedAt;
		expect(delay).toBeGreaterThanOrEqual(195);
		expect(delay).toBeLessThan(350);
		await eventually(async () => expect(await stateOf(node)).toMatchObject({ authenticated: true }));
	});

	it("pings the orchestrator about every pingIntervalMs", async () => {
		const orchestrator = await standIn();
		await startNotifier({ wsUrl: orchestrator.url, pingIntervalMs: 200 });
		await eventually(async () => expect(orchestrator.pings.length).toBeGreaterThanOrEqual(6), 5000);
		const gaps = orchestrator.pings.slice(1).map((at, i) => at - orchestrator.pings[i]);
		for (const gap of gaps) {
			expect(gap).toBeGreaterThanOrEqual(180);
			expect(gap).toBeLessThan(300);
		}
		expect(orchestrator.connections.length).toBe(1);
	});

	describeWithRedis("on Redis", () => {
		const redisUrl = process.env.TEST_REDIS_URL!;

		it("keeps the outbox across a notifier restart", async () => {
			const orchestrator = await standIn();
			const port = orchestrator.port;
			await orchestrator.stop();
			const redisPrefix = prefixFor(redisUrl);
			const wsUrl = `ws://127.0.0.1:${port}`;

			const first = await startNotifier({ wsUrl }, redisUrl, redisPrefix);
			const updates = Array.from({ length: 5 }, (_, i) => statusUpdate(`update ${i}`));
			for (const update of updates) await recordUpdate(first, update);
			expect(await stateOf(first)).toMatchObject({ outbox_size: 5, authenticated: false });
			await stopNode(first);

			const second = await startNotifier({ wsUrl }, redisUrl, redisPrefix);
			expect(await stateOf(second)).toMatchObject({ outbox_size: 5 });
			const back = await standIn(port);
			await eventually(async () => expect(back.events).toHaveLength(5));
			expect(back.events.map(event => event.task_id)).toEqual(updates.map(update => update.task.task_id));
			expect(await stateOf(second)).toMatchObject({ outbox_size: 0 });
		});

		it("lets one of two notifiers connect, delivers through either once, and fails over", async () => {
			const before = await standIn();
			const redisPrefix = prefixFor(redisUrl);
			// Lock renewals (each a drain too) only when the test moves the clock: delivery below comes from
			// the wake-ups. The lock lives a minute in Redis, so it never expires between two renewals.
			const clock = new ManualClock();
			const leaderTtlMs = 60000;
			// Pings only from the real test of them: an interval of pings in one step of the clock gets no pong.
			const settings = { wsUrl: before.url, leaderTtlMs, pingIntervalMs: 10 * leaderTtlMs, clock };
			const first = await startNotifier(settings, redisUrl, redisPrefix);
			const second = await startNotifier(settings, redisUrl, redisPrefix);
			await eventually(async () =>
				expect(await stateOf(first)).toMatchObject({ leader: true, authenticated: true })
			);
			expect(await stateOf(second)).toMatchObject({ leader: false, connected: false });
			// Each recorded frame goes to every subscriber of the frames channel: the leader alone listens.
			const framesListeners = async () => {
				const redis = connectRedis(redisUrl);
				try {
					return ((await redis.pubsub("NUMSUB", framesChannel(redisPrefix))) as [string, number])[1];
				} finally {
					await redis.quit();
				}
			};
			await eventually(async () => expect(await framesListeners()).toBe(1), 1000);

			const emitted: string[] = [];
			const emitThrough = async (node: TestNode, count: number) => {
				for (let i = 0; i < count; i++) {
					const update = statusUpdate(`update ${emitted.length}`);
					emitted.push(update.task.task_id);
					await recordUpdate(node, update);
				}
			};
			// The follower wakes the leader up: no need to wait for its next renewal.
			await emitThrough(second, 5);
			await eventually(async () => expect(before.events).toHaveLength(5), 1000);
			await emitThrough(first, 5);
			await eventually(async () => expect(before.events).toHaveLength(10), 1000);
			// One lock renewal on both nodes (the leader renews and drains, the other tries to take the lock),
			// then one more update: a second connection or a duplicate would have come before it.
			const redis = connectRedis(redisUrl);
			try {
				const key = `${redisPrefix}notifier:leader`;
				const ttlBefore = await redis.pttl(key);
				await clock.advance(leaderTtlMs / 3);
				await until("the leader renewed its lock", async () => (await redis.pttl(key)) > ttlBefore, 5000);
			} finally {
				await redis.quit();
			}
			await emitThrough(second, 1);
			await eventually(async () => expect(before.events).toHaveLength(11), 1000);
			expect(before.events.map(event => event.task_id).sort()).toEqual([...emitted].sort());
			expect(before.connections.length).toBe(1);

			await before.stop();
			await eventually(async () => expect(await stateOf(first)).toMatchObject({ connected: false }));
			await emitThrough(first, 5);
			await emitThrough(second, 5);
			expect(await stateOf(second)).toMatchObject({ outbox_size: 10, leader: false });
			await stopNode(first);
			await eventually(async () => expect(await stateOf(second)).toMatchObject({ leader: true }), 1000);
			await eventually(async () => expect(await framesListeners()).toBe(1), 1000);

			// The new leader's first attempt found no orchestrator; its retry waits on the clock.
			const after = await standIn(before.port);
			await eventually(async () => {
				// Until it dials again; then the handshake must not meet its time limit on this clock.
				if (after.connections.length === 0) await clock.advance(1000);
				expect(after.events).toHaveLength(10);
			});
			// Sent behind the others on the one connection: a late duplicate would have come before it.
			await emitThrough(second, 1);
			await eventually(async () => expect(after.events).toHaveLength(11));
			const delivered = [...before.events, ...after.events].map(event => event.task_id);
			expect(delivered.sort()).toEqual([...emitted].sort());
			expect(after.events.map(event => event.task_id)).toEqual(emitted.slice(11));
			expect(before.maxOpen).toBe(1);
			expect(after.maxOpen).toBe(1);
			expect(await stateOf(second)).toMatchObject({ authenticated: true, outbox_size: 0 });
		});
	});
});
