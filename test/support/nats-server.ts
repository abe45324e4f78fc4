import { spawn, type ChildProcess } from "child_process";
import { createServer, Socket } from "net";

/** A free TCP port on 127.0.0.1 (released before it is returned, so racy only in theory). */
export function freePort(): Promise<number> {
	return new Promise((resolve, reject) => {
		const server = createServer();
		server.once("error", reject);
		server.listen(0, "127.0.0.1", () => {
			const { port } = server.address() as { port: number };
			server.close(() => resolve(port));
		});
	});
}

const answers = (port: number) =>
	new Promise<boolean>(resolve => {
		const socket = new Socket();
		const done = (ok: boolean) => {
			socket.destroy();
			resolve(ok);
		};
		socket.setTimeout(500, () => done(false));
		socket.once("error", () => done(false));
		socket.connect(port, "127.0.0.1", () => done(true));
	});

const BINARY = process.env.NATS_SERVER_BIN ?? "/usr/sbin/nats-server";

/**
 * A nats-server of the test's own on a free loopback port, which the test may stop and start again
 * (an outage) without touching the shared one.
 */
export class OwnNatsServer {
	private child: ChildProcess | null = null;

	private constructor(readonly port: number) {}

	static async start(): Promise<OwnNatsServer> {
		const server = new OwnNatsServer(await freePort());
		await server.resume();
		return server;
	}

	get url(): string {
		return `nats://127.0.0.1:${this.port}`;
	}

	/** Starts the server (again) on the same port; resolves once it accepts connections. */
	async resume(): Promise<void> {
		const child = spawn(BINARY, ["-a", "127.0.0.1", "-p", String(this.port)], { stdio: "ignore" });
		this.child = child;
		const deadline = Date.now() + 10000;
		while (!(await answers(this.port))) {
			if (child.exitCode !== null) throw new Error(`nats-server exited with ${child.exitCode}`);
			if (Date.now() > deadline) throw new Error("nats-server did not start within 10 s");
			await new Promise(resolve => setTimeout(resolve, 50));
		}
	}

	/** Kills the server at once, as a crash or a network cut would look to its clients. */
	async kill(): Promise<void> {
		const child = this.child;
		this.child = null;
		if (!child || child.exitCode !== null) return;
		const exited = new Promise(resolve => child.once("exit", resolve));
		child.kill("SIGKILL");
		await exited;
	}
}
