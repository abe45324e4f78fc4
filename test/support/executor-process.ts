import { spawn, type ChildProcess } from "child_process";
import path from "path";
import { RECORDER } from "./loop-stalls";
import { SERVICE_TOKEN } from "./node";

const ROOT = path.resolve(__dirname, "../..");
const RUNNER = path.join(ROOT, "node_modules/moleculer/bin/moleculer-runner.js");

export interface Exit {
	code: number | null;
	signal: NodeJS.Signals | null;
}

/**
 * One executor node: the project's own runner, in its own process, with only the executor service.
 * With LOOP_STALLS_FILE in `env` it records its event loop's stalls there (test/support/loop-stalls.ts).
 */
export class ExecutorProcess {
	readonly child: ChildProcess;
	readonly exited: Promise<Exit>;
	exit: Exit | null = null;
	private output = "";

	constructor(
		readonly nodeID: string,
		env: NodeJS.ProcessEnv
	) {
		const tsNode = require.resolve("ts-node/register/transpile-only");
		const runner = [RUNNER, "--config", "moleculer.config.ts", "services/executor.service.ts"];
		const args = ["-r", tsNode, ...(env.LOOP_STALLS_FILE ? ["-r", RECORDER] : []), ...runner];
		this.child = spawn(process.execPath, args, { cwd: ROOT, env, stdio: ["ignore", "pipe", "pipe"] });
		// Only the tail is kept: it is printed when the process misbehaves.
		const keep = (chunk: Buffer) => {
			this.output = (this.output + chunk.toString()).slice(-6000);
		};
		this.child.stdout!.on("data", keep);
		this.child.stderr!.on("data", keep);
		this.exited = new Promise(resolve =>
			this.child.once("exit", (code, signal) => {
				this.exit = { code, signal };
				resolve(this.exit);
			})
		);
	}

	get alive(): boolean {
		return this.exit === null;
	}

	get log(): string {
		return this.output;
	}

	signal(signal: NodeJS.Signals): void {
		if (this.alive) this.child.kill(signal);
	}

	/** Exit status, or null when the process is still running after `timeoutMs`. */
	async waitExit(timeoutMs: number): Promise<Exit | null> {
		let timer: NodeJS.Timeout | undefined;
		const timedOut = new Promise<null>(resolve => (timer = setTimeout(resolve, timeoutMs, null)));
		try {
			return await Promise.race([this.exited, timedOut]);
		} finally {
			// A pending timer would keep Jest from exiting.
			clearTimeout(timer);
		}
	}

	/** Graceful stop, then SIGKILL: a stuck child must never outlive the suite. */
	async stop(): Promise<void> {
		this.signal("SIGTERM");
		if (!(await this.waitExit(10000))) this.signal("SIGKILL");
		await this.exited;
	}
}

/** Where the nodes of a test cluster meet: its NATS, its Redis key prefix, its Moleculer namespace. */
export interface TestCluster {
	transporter: string;
	redisUrl: string;
	prefix: string;
	namespace: string;
}

/** The environment of an executor process joining `cluster` as `nodeID`; `extra` overrides any of it. */
export function executorEnv(
	cluster: TestCluster,
	nodeID: string,
	extra: NodeJS.ProcessEnv = {}
): NodeJS.ProcessEnv {
	const env: NodeJS.ProcessEnv = {
		...process.env,
		TRANSPORTER: cluster.transporter,
		REDIS_URL: cluster.redisUrl,
		REDIS_PREFIX: cluster.prefix,
		NAMESPACE: cluster.namespace,
		NODE_ID: nodeID,
		LOG_LEVEL: "warn",
		// Several executors on one host: each its own free port for /health and /metrics.
		PORT: "0",
		TASK_CONCURRENCY: "4",
		SERVICE_TOKEN,
		// The runner's MOL_* options: peers notice a SIGKILLed node within seconds, not 30 s.
		MOL_HEARTBEAT_INTERVAL: "1",
		MOL_HEARTBEAT_TIMEOUT: "5",
		...extra
	};
	// The runner would load these instead of the file named on its command line.
	delete env.SERVICES;
	delete env.SERVICEDIR;
	delete env.MOLECULER_CONFIG;
	return env;
}
