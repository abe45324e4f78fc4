import { randomUUID } from "crypto";
import { monitorEventLoopDelay } from "perf_hooks";
import { EVENT_LOOP_METRICS } from "../../lib/metrics/event-loop.middleware";
import type { TaskMessage } from "../../lib/tasks/task-queue";
import { dropPrefix, uniquePrefix } from "../support/backends";
import { until } from "../support/eventually";
import { ExecutorProcess, executorEnv, type TestCluster } from "../support/executor-process";
import { OwnNatsServer } from "../support/nats-server";
import { http, startNode, type TestNode } from "../support/node";
import { OrchestratorStandIn } from "../support/orchestrator";

/**
 * Chaos: a live cluster (an in-process gateway and notifier, two executor processes, a nats-server of
 * its own, the shared Redis) takes a steady stream of tasks while faults repeat: NATS killed and
 * restarted, the notifier node restarted, an executor killed with SIGKILL and replaced. At the end
 * every task must be stored completed and announced to the orchestrator; the counts are printed.
 */
const ROUNDS = Number(process.env.CHAOS_ROUNDS ?? 2);
const redisUrl = process.env.TEST_REDIS_URL ?? "redis://127.0.0.1:6379/0";

describe("chaos: tasks under repeated faults", () => {
	const prefix = uniquePrefix();
	const namespace = `chaos-${randomUUID()}`;
	const tenant = "chaos";
	const announced = new Map<string, number>();
	const executors: ExecutorProcess[] = [];
	/** This process's loop: the runner and the in-process gateway and notifier, while starting and then. */
	const startupLoop = monitorEventLoopDelay({ resolution: 10 });
	const loop = monitorEventLoopDelay({ resolution: 10 });
	/** Each executor process's own figure (its EventLoopMiddleware), the highest it reported. */
	const executorStalls = new Map<string, number>();
	let nats: OwnNatsServer;
	let orchestrator: OrchestratorStandIn;
	let gateway: TestNode;
	let notifier: TestNode | null = null;
	let spawned = 0;
	let notifiers = 0;
	let answered5xx = 0;

	const delay = (ms: number) => new Promise<void>(resolve => setTimeout(resolve, ms));
	const cluster = (): TestCluster => ({ transporter: nats.url, redisUrl, prefix, namespace });

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
		const nodeID = `executor-${++spawned}`;
		const executor = new ExecutorProcess(nodeID, executorEnv(cluster(), nodeID, { LOG_LEVEL: "error" }));
		executors.push(executor);
		return executor;
	};

	/** Resolves once the gateway sees `executor` as a live node; fails when it exits first. */
	const joined = (executor: ExecutorProcess) =>
		until(
			`${executor.nodeID} to join the cluster`,
			() => {
				if (!executor.alive) throw new Error(`${executor.nodeID} exited while starting:\n${executor.log}`);
				return gateway.broker.registry.nodes.get(executor.nodeID)?.available === true;
			},
			// Loading the executor through ts-node takes seconds, more while another one loads.
			90000
		).catch((err: Error) => {
			throw new Error(`${err.message}; its output:\n${executor.log}`);
		});

	const call = async (method: string, path: string, body?: unknown) => {
		try {
			const res = await http(gateway.url, method, path, { tenant, body });
			if (res.status >= 500) answered5xx++;
			return res;
		} catch {
			// No answer at all counts like a 5xx: the client got nothing usable.
			answered5xx++;
			return null;
		}
	};

	beforeAll(async () => {
		startupLoop.enable();
		nats = await OwnNatsServer.start();
		orchestrator = await OrchestratorStandIn.start();
		orchestrator.onFrame = frame => {
			if (frame.event === "task_completed")
				announced.set(frame.task_id, (announced.get(frame.task_id) ?? 0) + 1);
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
		await Promise.all([joined(startExecutor()), joined(startExecutor())]);
	}, 150000);

	afterAll(async () => {
		loop.disable();
		startupLoop.disable();
		await Promise.all(executors.map(executor => executor.stop()));
		await notifier?.stop();
		await gateway?.stop();
		await orchestrator?.stop();
		await nats?.kill();
		await dropPrefix(redisUrl, prefix);
	}, 60000);

	/** Asks every live executor for its own loop's longest stall (`$node.metrics`). */
	const readExecutorStalls = async () => {
		for (const executor of executors.filter(e => e.alive)) {
			const metrics = await gateway.broker
				.call<{ values: { value: number }[] }[], object>(
					"$node.metrics",
					{ includes: [EVENT_LOOP_METRICS.maxStall] },
					{ nodeID: executor.nodeID, timeout: 1000 }
				)
				.catch(() => []);
			const value = metrics[0]?.values[0]?.value;
			if (typeof value === "number")
				executorStalls.set(executor.nodeID, Math.max(value, executorStalls.get(executor.nodeID) ?? 0));
		}
	};

	it("completes and announces every task, answers no 5xx", async () => {
		startupLoop.disable();
		loop.enable();
		let watching = true;
		const watchExecutors = (async () => {
			while (watching) {
				await readExecutorStalls();
				await delay(1000);
			}
		})();
		const ids: string[] = [];
		let submitting = true;
		const lane = async () => {
			while (submitting) {
				const res = await call("POST", "/api/v1/internal/tasks", {
					payload: { tool_name: "datetime", parameters: { operation: "now" } }
				});
				if (res?.status === 202) ids.push(res.body.task_id);
				await delay(25);
			}
		};
		const lanes = Promise.all([lane(), lane()]);

		for (let round = 1; round <= ROUNDS; round++) {
			await delay(2000);
			await nats.kill();
			await delay(3000);
			await nats.resume();
			await delay(2000);
			await notifier!.stop();
			notifier = null;
			await delay(2000);
			notifier = await startNotifier();
			await delay(2000);
			const victim = executors.find(executor => executor.alive);
			if (!victim) throw new Error(`no executor alive: ${executors.map(e => e.log).join("\n")}`);
			victim.signal("SIGKILL");
			// The replacement must have joined before the next round stops NATS: a node that finds its
			// transporter down while starting exits at once (its orchestrator restarts it), by design.
			await joined(startExecutor());
		}
		await delay(2000);
		submitting = false;
		await lanes;

		const stored = new Map<string, string>();
		await until(
			"every task to be stored completed",
			async () => {
				const open = ids.filter(id => stored.get(id) !== "completed");
				for (let i = 0; i < open.length; i += 20)
					for (const task of await Promise.all(open.slice(i, i + 20).map(read)))
						if (task) stored.set(task.task_id, task.status);
				return ids.every(id => stored.get(id) === "completed");
			},
			90000
		).catch(() => undefined);
		await until(
			"every completed task to be announced",
			() => ids.every(id => announced.has(id)),
			30000
		).catch(() => undefined);

		const completed = ids.filter(id => stored.get(id) === "completed").length;
		const lost = ids.filter(id => !announced.has(id)).length;
		const duplicated = ids.filter(id => (announced.get(id) ?? 0) > 1).length;
		watching = false;
		await watchExecutors;
		await readExecutorStalls();
		const stallMs = Math.round(loop.max / 1e6);
		const startupStallMs = Math.round(startupLoop.max / 1e6);
		const perExecutor = [...executorStalls].map(([node, ms]) => `${node} ${ms} ms`).join(", ");
		console.log(
			[
				`[chaos] ${ROUNDS} rounds of: NATS killed 3 s, notifier node restarted, an executor SIGKILLed and replaced`,
				`  tasks submitted:   ${ids.length}`,
				`  tasks completed:   ${completed}`,
				`  tasks announced:   ${ids.length - lost}`,
				`  tasks lost:        ${lost}`,
				`  tasks duplicated:  ${duplicated} (announced more than once; at-least-once)`,
				`  max event-loop stall, per process:`,
				`    executor processes (each its own loop, from their services' start): ${perExecutor || "none reported"}`,
				`    test process (runner + in-process gateway and notifier) during the faults: ${stallMs} ms`,
				`    test process while starting the cluster (loading and compiling modules): ${startupStallMs} ms`,
				`  requests answered 5xx: ${answered5xx}`
			].join("\n")
		);
		expect({ completed, lost, answered5xx }).toEqual({ completed: ids.length, lost: 0, answered5xx: 0 });

		async function read(id: string) {
			const res = await call("GET", `/api/v1/internal/tasks/${id}`);
			return res?.status === 200 ? (res.body as TaskMessage) : null;
		}
	}, 420000);
});
