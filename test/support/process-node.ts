import { spawn, type ChildProcess } from "child_process";
import path from "path";

const ROOT = path.resolve(__dirname, "../..");
const RUNNER = path.join(ROOT, "node_modules/moleculer/bin/moleculer-runner.js");

export interface Exit {
	code: number | null;
	signal: NodeJS.Signals | null;
}

/**
 * The service started as `npm start` starts it (moleculer-runner, the project's config, every
 * service of `SERVICEDIR`), from the TypeScript sources, in its own process. Tests read its output
 * as an operator would: the printed token, the logged port.
 */
export class ServiceProcess {
	readonly child: ChildProcess;
	readonly exited: Promise<Exit>;
	exit: Exit | null = null;
	stdout = "";
	stderr = "";

	/** `services`: names of the services to run (the runner's SERVICES finds only compiled files). */
	constructor(env: NodeJS.ProcessEnv, services?: string[]) {
		const tsNode = require.resolve("ts-node/register/transpile-only");
		const load = services
			? services.map(name => `services/${name}.service.ts`)
			: ["--mask", "**/*.service.ts"];
		const args = ["-r", tsNode, RUNNER, "--config", "moleculer.config.ts", ...load];
		this.child = spawn(process.execPath, args, {
			cwd: ROOT,
			env: {
				...(services ? {} : { SERVICEDIR: "services" }),
				HOST: "127.0.0.1",
				PORT: "0",
				PATH: process.env.PATH,
				...env
			},
			stdio: ["ignore", "pipe", "pipe"]
		});
		this.child.stdout!.on("data", (chunk: Buffer) => (this.stdout += chunk.toString()));
		this.child.stderr!.on("data", (chunk: Buffer) => (this.stderr += chunk.toString()));
		this.exited = new Promise(resolve =>
			this.child.once("exit", (code, signal) => resolve((this.exit = { code, signal })))
		);
	}

	/** Resolves the first match of `pattern` in the output, or rejects when the process exits first. */
	async waitFor(pattern: RegExp, timeoutMs = 60000): Promise<RegExpMatchArray> {
		const deadline = Date.now() + timeoutMs;
		for (;;) {
			const match = pattern.exec(this.stdout) ?? pattern.exec(this.stderr);
			if (match) return match;
			if (this.exit) throw new Error(`exited (${this.exit.code}) before ${pattern}:\n${this.output}`);
			if (Date.now() > deadline) throw new Error(`no ${pattern} after ${timeoutMs} ms:\n${this.output}`);
			await new Promise(resolve => setTimeout(resolve, 25));
		}
	}

	/** Base URL of the gateway, from its "listening on" line. */
	async url(): Promise<string> {
		const [, port] = await this.waitFor(/API Gateway listening on http:\/\/[^:]+:(\d+)/);
		return `http://127.0.0.1:${port}`;
	}

	get output(): string {
		return (this.stdout + this.stderr).slice(-6000);
	}

	/** Graceful stop, then SIGKILL: a stuck child must never outlive the suite. */
	async stop(): Promise<void> {
		if (this.exit) return;
		this.child.kill("SIGTERM");
		const timer = setTimeout(() => this.child.kill("SIGKILL"), 10000);
		await this.exited;
		clearTimeout(timer);
	}
}
