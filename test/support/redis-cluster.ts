import { execFile, spawn, type ChildProcess } from "child_process";
import { mkdtempSync, rmSync } from "fs";
import { tmpdir } from "os";
import { join } from "path";
import { promisify } from "util";
import { freePort } from "./nats-server";

const run = promisify(execFile);

/**
 * A Redis Cluster of the test's own: three masters (no replicas) on free loopback ports, each in a
 * temporary directory, joined with `redis-cli --cluster create`. `url` is what REDIS_URL takes.
 */
export class OwnRedisCluster {
	private constructor(
		readonly ports: number[],
		private readonly children: ChildProcess[],
		private readonly dir: string
	) {}

	static async start(masters = 3): Promise<OwnRedisCluster> {
		const dir = mkdtempSync(join(tmpdir(), "redis-cluster-"));
		const ports = await Promise.all(Array.from({ length: masters }, () => freePort()));
		const children = ports.map(port =>
			spawn(
				"redis-server",
				[
					"--port",
					String(port),
					"--bind",
					"127.0.0.1",
					"--cluster-enabled",
					"yes",
					"--cluster-config-file",
					`nodes-${port}.conf`,
					"--save",
					"",
					"--appendonly",
					"no"
				],
				{ cwd: dir, stdio: "ignore" }
			)
		);
		const cluster = new OwnRedisCluster(ports, children, dir);
		try {
			for (const port of ports) await cluster.waitFor(port, "PING", reply => reply === "PONG");
			const nodes = ports.map(port => `127.0.0.1:${port}`);
			await run("redis-cli", ["--cluster", "create", ...nodes, "--cluster-replicas", "0", "--cluster-yes"]);
			for (const port of ports)
				await cluster.waitFor(port, "CLUSTER INFO", reply => reply.includes("cluster_state:ok"));
		} catch (err) {
			await cluster.stop();
			throw err;
		}
		return cluster;
	}

	get url(): string {
		return `redis+cluster://${this.ports.map(port => `127.0.0.1:${port}`).join(",")}`;
	}

	private async waitFor(port: number, command: string, ready: (reply: string) => boolean) {
		const deadline = Date.now() + 20000;
		for (;;) {
			const reply = await run("redis-cli", ["-p", String(port), ...command.split(" ")]).then(
				out => out.stdout,
				() => ""
			);
			if (ready(reply.trim())) return;
			if (Date.now() > deadline) throw new Error(`redis-server :${port} did not answer ${command} in time`);
			await new Promise(resolve => setTimeout(resolve, 100));
		}
	}

	async stop(): Promise<void> {
		await Promise.all(
			this.children.map(
				child =>
					new Promise<void>(resolve => {
						if (child.exitCode !== null) return resolve();
						child.once("exit", () => resolve());
						child.kill("SIGKILL");
					})
			)
		);
		rmSync(this.dir, { recursive: true, force: true });
	}
}
