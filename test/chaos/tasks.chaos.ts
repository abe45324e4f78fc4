import { spawn, type ChildProcess } from "child_process";
import { randomUUID } from "crypto";
import { mkdtempSync, rmSync } from "fs";
import { tmpdir } from "os";
import path from "path";
import type { TaskMessage } from "../../lib/tasks/task-queue";
import { dropPrefix, uniquePrefix } from "../support/backends";
import { until } from "../support/eventually";
import { ExecutorProcess, executorEnv, type TestCluster } from "../support/executor-process";
import { readStalls, RECORDER, watchLoop, worst, type Stall } from "../support/loop-stalls";
import { OwnNatsServer } from "../support/nats-server";
import { http, startNode, type TestNode } from "../support/node";
import { OrchestratorStandIn } from "../support/orchestrator";

/**
 * Chaos: a live cluster (an in-process gateway and notifier, two executor processes, a nats-server of
 * its own, the shared Redis) takes a steady stream of tasks while faults repeat: NATS killed and
 * restarted, the notifier node restarted, an executor killed with SIGKILL and replaced. At the end
 * every task must be stored completed and announced to the orchestrator; the counts are printed.
 *
 * No process may block its event loop longer than 100 ms while the faults run (issue #11). A stall is
 * measured wall-clock and, separately, as the CPU time the thread itself used in it: on a loaded host
 * the OS leaves a process unscheduled for hundreds of ms (an idle process started alongside shows how
 * long), which no code of ours causes. The bound applies to the process's own part.
 */
const ROUNDS = Number(process.env.CHAOS_ROUNDS ?? 2);
const MAX_OWN_STALL_MS = 100;
const redisUrl = process.env.TEST_REDIS_URL ?? "redis://127.0.0.1:6379/0";

describe("chaos: tasks under repeated faults", () => {
	const prefix = uniquePrefix();
	const namespace = `chaos-${randomUUID()}`;
	const tenant = "chaos";
	const announced = new Map<string, number>();
	const executors: ExecutorProcess[] = [];
	/** Each executor records its loop's stalls in a file of its own here; so does the idle process. */
	const stallDir = mkdtempSync(path.join(tmpdir(), "chaos-stalls-"));
	const stallFile = (name: string) => path.join(stallDir, `${name}.jsonl`);
	/** When each executor had joined: its start-up (loading modules, warming up) is no stall a request meets. */
	const joinedAt = new Map<string, number>();
	/** An idle node process on the same host: how long the OS leaves a process unscheduled, meanwhile. */
	let idle: ChildProcess | null = null;
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
		const executor = new ExecutorProcess(
			nodeID,
			executorEnv(cluster(), nodeID, { LOG_LEVEL: "error", LOOP_STALLS_FILE: stallFile(nodeID) })
		);
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
		).then(
			() => void joinedAt.set(executor.nodeID, Date.now()),
			(err: Error) => {
				throw new Error(`${err.message}; its output:\n${executor.log}`);
			}
		);

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
		// Node reads its program from stdin: while the pipe stays open it only runs the recorder's timer.
		idle = spawn(
			process.execPath,
			["-r", require.resolve("ts-node/register/transpile-only"), "-r", RECORDER],
			{
				env: { ...process.env, LOOP_STALLS_FILE: stallFile("idle") },
				stdio: ["pipe", "ignore", "ignore"]
			}
		);
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
		idle?.stdin!.end();
		await Promise.all(executors.map(executor => executor.stop()));
		await notifier?.stop();
		await gateway?.stop();
		await orchestrator?.stop();
		await nats?.kill();
		await dropPrefix(redisUrl, prefix);
		rmSync(stallDir, { recursive: true, force: true });
	}, 60000);

	it("completes and announces every task, answers no 5xx", async () => {
		// This process runs the gateway and the notifier (and the test's client and Jest itself).
		const started = Date.now();
		const ownStalls: Stall[] = [];
		const stopWatching = watchLoop(stall => ownStalls.push(stall));
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
		stopWatching();
		const ended = Date.now();
		const stalls = new Map([
			...executors.map(
				({ nodeID }) =>
					[nodeID, worst(readStalls(stallFile(nodeID)), joinedAt.get(nodeID) ?? ended, ended)] as const
			),
			["test process", worst(ownStalls, started, ended)] as const
		]);
		const idleStall = worst(readStalls(stallFile("idle")), started, ended);
		const shown = [...stalls].map(([name, { ms, ownMs }]) => `${name} ${ms} / ${ownMs} ms`).join(", ");
		console.log(
			[
				`[chaos] ${ROUNDS} rounds of: NATS killed 3 s, notifier node restarted, an executor SIGKILLed and replaced`,
				`  tasks submitted:   ${ids.length}`,
				`  tasks completed:   ${completed}`,
				`  tasks announced:   ${ids.length - lost}`,
				`  tasks lost:        ${lost}`,
				`  tasks duplicated:  ${duplicated} (announced more than once; at-least-once)`,
				`  event-loop stalls while the faults ran (executors from when they joined), per process: the longest`,
				`  wall-clock / the most CPU time the process itself used in one (bound: ${MAX_OWN_STALL_MS} ms)`,
				`    ${shown}`,
				`    an idle process on the same host (the OS not running it): ${idleStall.ms} ms`,
				`  requests answered 5xx: ${answered5xx}`
			].join("\n")
		);
		expect({ completed, lost, answered5xx }).toEqual({ completed: ids.length, lost: 0, answered5xx: 0 });
		const overBound = [...stalls].filter(([, { ownMs }]) => ownMs > MAX_OWN_STALL_MS).map(([name]) => name);
		expect(overBound).toEqual([]);

		async function read(id: string) {
			const res = await call("GET", `/api/v1/internal/tasks/${id}`);
			return res?.status === 200 ? (res.body as TaskMessage) : null;
		}
	}, 420000);
});
