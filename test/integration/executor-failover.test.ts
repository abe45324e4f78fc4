import { randomUUID } from "crypto";
import type { ServerResponse } from "http";
import { describeWithNats, describeWithRedis, dropPrefix, uniquePrefix } from "../support/backends";
import { eventually } from "../support/eventually";
import { ExecutorProcess } from "../support/executor-process";
import { http, SERVICE_TOKEN, startNode, type TestNode } from "../support/node";
import { ServiceProcess } from "../support/process-node";
import { Upstream } from "../support/upstream";

const describeWithCluster =
	describeWithRedis === describe && describeWithNats === describe ? describe : describe.skip;

/**
 * Detection takes at most twice HEARTBEAT_TIMEOUT_S (3 s by default), plus a loaded machine's
 * slack: far below the 30 s request timeout a lost call used to wait for.
 */
const FAILOVER_WITHIN_MS = 12000;

describeWithCluster("a crashed executor node (SIGKILL, real processes over NATS)", () => {
	const redisUrl = process.env.TEST_REDIS_URL!;
	const transporter = process.env.TEST_NATS_URL!;
	const prefix = uniquePrefix();
	const namespace = `failover-${randomUUID()}`;
	const tenant = "failover";
	/** Holds every `/held/…` request until released; the origin answers at once (probes). */
	let upstream: Upstream;
	const held: ServerResponse[] = [];
	const releaseAll = () => {
		for (const res of held.splice(0)) if (!res.destroyed) res.end(JSON.stringify({ ok: true }));
	};
	const executors: ExecutorProcess[] = [];
	let gateway: ServiceProcess;
	let url: string;
	/** Sees the cluster as the gateway does: which executor nodes are up. */
	let observer: TestNode;

	const common = {
		TRANSPORTER: transporter,
		REDIS_URL: redisUrl,
		REDIS_PREFIX: prefix,
		NAMESPACE: namespace,
		SERVICE_TOKEN,
		LOG_LEVEL: "warn",
		EMBEDDINGS: "off",
		OUTBOUND_ALLOW_HOSTS: "127.0.0.1"
	};

	const liveExecutors = () =>
		(observer.broker.registry.getServiceList({ onlyAvailable: true }) as { name: string; nodeID: string }[])
			.filter(service => service.name === "executor")
			.map(service => service.nodeID);

	/** Starts one more executor process (the project's runner and config) and waits until it serves. */
	const startExecutor = async () => {
		const nodeID = `executor-${executors.length + 1}`;
		const env: NodeJS.ProcessEnv = { ...process.env, ...common, NODE_ID: nodeID, PORT: "0" };
		// The runner would load these instead of the file named on its command line.
		delete env.SERVICES;
		delete env.SERVICEDIR;
		const executor = new ExecutorProcess(nodeID, env);
		executors.push(executor);
		await eventually(async () => {
			if (!executor.alive) throw new Error(`${nodeID} exited:\n${executor.log}`);
			expect(liveExecutors()).toContain(nodeID);
		}, 60000);
		return executor;
	};

	/** Two executor nodes up, and the cluster past any crash of an earlier test. */
	const twoLiveExecutors = async () => {
		while (executors.filter(executor => executor.alive).length < 2) await startExecutor();
		await eventually(async () => expect(liveExecutors()).toHaveLength(2), 20000);
	};

	const execute = (body: Record<string, unknown>) =>
		http(url, "POST", "/api/v1/internal/execute", { tenant, body });

	const calculate = (expression: string) => execute({ tool_name: "calculator", parameters: { expression } });

	const registerHeldTool = async (name: string, annotations: Record<string, boolean>) => {
		const res = await http(url, "POST", "/api/v1/tools", {
			tenant,
			body: {
				name,
				description: "Waits on the test's upstream until released",
				type: "external_api",
				config: { url: upstream.url(`/held/${name}`), method: "GET" },
				timeout_ms: 60000,
				annotations
			}
		});
		expect(res.status).toBe(201);
		await eventually(async () => {
			const tool = await http(url, "GET", `/api/v1/tools/${res.body.id}`, { tenant });
			expect(tool.body.status).toBe("active");
		}, 30000);
	};

	/** Kills an executor while two held calls run, one on each node; resolves the live one. */
	const killOneDuringHeldCalls = async (tool: string) => {
		const before = upstream.hits(`/held/${tool}`);
		const calls = [execute({ tool_name: tool }), execute({ tool_name: tool })];
		await eventually(async () => expect(upstream.hits(`/held/${tool}`)).toBe(before + 2), 20000);
		const [victim, survivor] = executors.filter(executor => executor.alive);
		victim.signal("SIGKILL");
		return { calls, killedAt: Date.now(), survivor };
	};

	beforeAll(async () => {
		upstream = await Upstream.start((req, res) => {
			if (req.path.startsWith("/held/")) held.push(res);
			else res.end("{}");
		});
		observer = await startNode({
			services: [],
			transporter,
			broker: { namespace, nodeID: "observer", heartbeatInterval: 1, heartbeatTimeout: 3 }
		});
		gateway = new ServiceProcess({ ...common, NODE_ID: "gateway" }, ["api", "registry", "validator"]);
		url = await gateway.url();
		// The gateway listens before the registry beside it has started (503 until then).
		await eventually(
			async () => expect((await http(url, "GET", "/api/v1/tools", { tenant })).status).toBe(200),
			30000
		);
		// Registration validates on an executor node.
		await twoLiveExecutors();
		await registerHeldTool("held_idempotent", { idempotent: true });
		await registerHeldTool("held_once", { idempotent: false, read_only: false });
	}, 180000);

	afterAll(async () => {
		releaseAll();
		await Promise.all(executors.map(executor => executor.stop()));
		await gateway?.stop();
		await observer?.stop();
		await upstream?.close();
		await dropPrefix(redisUrl, prefix);
	}, 60000);

	it("runs an idempotent call it held again on the live node, within seconds", async () => {
		await twoLiveExecutors();
		const { calls, killedAt } = await killOneDuringHeldCalls("held_idempotent");
		// The lost call reaches the upstream a third time, from the live node.
		await eventually(async () => expect(upstream.hits("/held/held_idempotent")).toBe(3), FAILOVER_WITHIN_MS);
		expect(Date.now() - killedAt).toBeLessThan(FAILOVER_WITHIN_MS);
		releaseAll();
		const answers = await Promise.all(calls);
		expect(answers.map(res => [res.status, res.body.status])).toEqual([
			[200, "completed"],
			[200, "completed"]
		]);
	}, 60000);

	it("answers calculator calls made right after the crash from the live node", async () => {
		await twoLiveExecutors();
		// A new node's calculator threads start with it: both nodes answer before the crash.
		await eventually(async () => {
			const warm = await Promise.all([1, 2, 3, 4].map(() => calculate("1 + 1")));
			expect(warm.map(res => res.body.status)).toEqual(["completed", "completed", "completed", "completed"]);
		}, 30000);
		executors.find(executor => executor.alive)!.signal("SIGKILL");
		const started = Date.now();
		const answers = await Promise.all(Array.from({ length: 6 }, (_, i) => calculate(`${i} + 1`)));
		const elapsed = Date.now() - started;
		expect(answers.map(res => [res.status, res.body.result ?? res.body])).toEqual(
			Array.from({ length: 6 }, (_, i) => [200, { value: i + 1 }])
		);
		expect(elapsed).toBeLessThan(FAILOVER_WITHIN_MS);
	}, 60000);

	it("never runs a non-idempotent call twice: 503 EXECUTOR_LOST with Retry-After", async () => {
		await twoLiveExecutors();
		const { calls, killedAt } = await killOneDuringHeldCalls("held_once");
		const lost = await Promise.race(calls.map(call => call.then(res => ({ res, at: Date.now() }))));
		expect(lost.at - killedAt).toBeLessThan(FAILOVER_WITHIN_MS);
		expect(lost.res.status).toBe(503);
		expect(lost.res.body).toMatchObject({ code: 503, type: "EXECUTOR_LOST" });
		expect(Number(lost.res.headers.get("retry-after"))).toBeGreaterThan(0);
		releaseAll();
		const answers = await Promise.all(calls);
		expect(answers.map(res => res.status).sort()).toEqual([200, 503]);
		// Run once per call, never again.
		expect(upstream.hits("/held/held_once")).toBe(2);
	}, 60000);
});
