import { answers, freePort, OwnServer } from "./own-server";

export { freePort };

const BINARY = process.env.NATS_SERVER_BIN ?? "/usr/sbin/nats-server";

/** A nats-server of the test's own (see OwnServer). */
export class OwnNatsServer extends OwnServer {
	static async start(): Promise<OwnNatsServer> {
		const port = await freePort();
		const server = new OwnNatsServer(port, BINARY, ["-a", "127.0.0.1", "-p", String(port)], port =>
			answers(port)
		);
		await server.resume();
		return server;
	}

	get url(): string {
		return `nats://127.0.0.1:${this.port}`;
	}
}
