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

/**
 * Whether a server on 127.0.0.1:`port` accepts a connection and, given an `exchange`, answers its
 * `send` with something that starts with `reply`.
 */
export function answers(port: number, exchange?: { send: string; reply: string }): Promise<boolean> {
	return new Promise<boolean>(resolve => {
		const socket = new Socket();
		const done = (ok: boolean) => {
			socket.destroy();
			resolve(ok);
		};
		socket.setTimeout(500, () => done(false));
		socket.once("error", () => done(false));
		if (exchange) socket.once("data", chunk => done(chunk.toString().startsWith(exchange.reply)));
		socket.connect(port, "127.0.0.1", () => (exchange ? socket.write(exchange.send) : done(true)));
	});
}

/**
 * A server process of the test's own on a free loopback port, which the test may kill and start
 * again (an outage) without touching the shared one.
 */
export class OwnServer {
	private child: ChildProcess | null = null;

	protected constructor(
		readonly port: number,
		private readonly command: string,
		private readonly args: string[],
		/** Whether the server on `port` answers yet. */
		private readonly answers: (port: number) => Promise<boolean>
	) {}

	/** Starts the server (again) on the same port; resolves once it answers. */
	async resume(): Promise<void> {
		const child = spawn(this.command, this.args, { stdio: "ignore" });
		this.child = child;
		const deadline = Date.now() + 10000;
		while (!(await this.answers(this.port))) {
			if (child.exitCode !== null) throw new Error(`${this.command} exited with ${child.exitCode}`);
			if (Date.now() > deadline) throw new Error(`${this.command} did not start within 10 s`);
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
