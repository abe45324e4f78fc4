import { randomUUID } from "crypto";
import type { TaskMessage } from "../../lib/tasks/task-queue";
import { describeWithRedis, dropPrefix, uniquePrefix } from "../support/backends";
import { until } from "../support/eventually";
import { ExecutorProcess, executorEnv, type TestCluster } from "../support/executor-process";
import { OwnNatsServer } from "../support/nats-server";
import { http, startNode, type TestNode } from "../support/node";
import { OrchestratorStandIn } from "../support/orchestrator";

/**
 * The promises of a queued task under faults, on a cluster of real processes over a NATS server of the
 * test's own (so it can be killed) and the shared Redis: submission needs no executor, and every task
 * that completes is announced to the orchestrator although the transporter went down and the notifier
 * node restarted meanwhile.
 */
describeWithRedis("queued tasks through a NATS outage and a notifier restart", () => {
	const redisUrl = process.env.TEST_REDIS_URL!;
	const prefix = uniquePrefix();
	const namespace = `outage-${randomUUID()}`;
	const tenant = "outage";
	/** Events the orchestrator received, per task. */
	const received = new Map<string, string[]>();
	let nats: OwnNatsServer;
	let orchestrator: OrchestratorStandIn;
	let gateway: TestNode;
	let notifier: TestNode | null = null;
	let executor: ExecutorProcess | null = null;
	let notifiers = 0;
	const delay = (ms: number) => new Promise<void>(resolve => setTimeout(resolve, ms));
	const cluster = (): TestCluster => ({ transporter: nats.url, redisUrl, prefix, namespace });

	const completions = (taskId: string) =>
		(received.get(taskId) ?? []).filter(e => e === "task_completed").length;

	const startNotifier = () =>
		startNode({
			services: ["notifier"],
			transporter: nats.url,
			redisUrl,
			redisPrefix: prefix,
			nodeID: `notifier-${++notifiers}`,
			settings: { wsUrl: orchestrator.url, leaderTtlMs: 1500, initialBackoffMs: 100, maxBackoffMs: 1000 },
			broker: { namespace }
		});

	const startExecutor = () => {
		return new ExecutorProcess("executor-1", executorEnv(cluster(), "executor-1"));
	};

	const submit = async () => {
		const res = await http(gateway.url, "POST", "/api/v1/internal/tasks", {
			tenant,
			body: { payload: { tool_name: "datetime", parameters: { operation: "now" } } }
		});
		if (res.status !== 202) throw new Error(`submit answered ${res.status}: ${JSON.stringify(res.body)}`);
		return res.body.task_id as string;
	};
	const read = async (taskId: string) =>
		(await http(gateway.url, "GET", `/api/v1/internal/tasks/${taskId}`, { tenant })).body as TaskMessage;

	beforeAll(async () => {
		nats = await OwnNatsServer.start();
		orchestrator = await OrchestratorStandIn.start();
		orchestrator.onFrame = frame => {
			const events = received.get(frame.task_id) ?? [];
			events.push(frame.event);
			received.set(frame.task_id, events);
		};
		gateway = await startNode({
			services: ["api", "registry", "validator"],
			transporter: nats.url,
			redisUrl,
			redisPrefix: prefix,
			nodeID: "gateway",
			broker: { namespace, heartbeatInterval: 1, heartbeatTimeout: 5 }
		});
		notifier = await startNotifier();
	}, 60000);

	afterAll(async () => {
		await executor?.stop();
		if (executor?.log.trim()) console.log(`[outage] executor logged:\n${executor.log}`);
		await notifier?.stop();
		await gateway?.stop();
		await orchestrator?.stop();
		await nats?.kill();
		await dropPrefix(redisUrl, prefix);
	}, 60000);

	it("accepts a task while no executor runs (202, pending) and runs it once one starts", async () => {
		const taskId = await submit();
		expect((await read(taskId)).status).toBe("pending");
		executor = startExecutor();
		await until("the task to complete", async () => (await read(taskId)).status === "completed", 60000);
		await until("its task_completed frame", () => completions(taskId) === 1, 10000);
	}, 90000);

	it("announces every completed task although NATS was killed and the notifier node restarted", async () => {
		const ids: string[] = [];
		/** Whether 20 tasks were submitted after the first `from`, and the 20th of them is completed. */
		const ranSince = async (from: number) =>
			ids.length >= from + 20 && (await read(ids[from + 19])).status === "completed";
		let submitting = true;
		const submissions = (async () => {
			while (submitting) {
				ids.push(await submit());
				await delay(20);
			}
		})();
		await until("some tasks", () => ids.length >= 20, 20000);
		const killedAt = ids.length;
		await nats.kill();
		// The outage lasts until tasks submitted during it have run: their events had no NATS to travel on.
		await until("tasks submitted and run while NATS is down", () => ranSince(killedAt), 30000);
		await nats.resume();
		await until("more tasks", () => ids.length >= 60, 20000);
		const restartFrom = ids.length;
		await notifier!.stop();
		notifier = null;
		// Down until tasks submitted meanwhile have run: their frames wait in the outbox for the next notifier.
		await until("tasks submitted and run while no notifier runs", () => ranSince(restartFrom), 30000);
		notifier = await startNotifier();
		const restartedAt = ids.length;
		await until("tasks after the restart", () => ids.length >= restartedAt + 20, 20000);
		submitting = false;
		await submissions;

		await until(
			"every task to be stored completed",
			async () => {
				for (let i = 0; i < ids.length; i += 20) {
					const tasks = await Promise.all(ids.slice(i, i + 20).map(read));
					if (tasks.some(task => task.status !== "completed")) return false;
				}
				return true;
			},
			60000
		);
		await until("a task_completed frame of every task", () => ids.every(id => completions(id) >= 1), 30000);
		const duplicated = ids.filter(id => completions(id) > 1).length;
		console.log(
			`[outage] ${ids.length} tasks submitted, all completed, ${ids.length} announced, 0 lost, ${duplicated} announced twice`
		);
		expect(ids.filter(id => completions(id) === 0)).toEqual([]);
	}, 180000);
});
