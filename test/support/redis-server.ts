import { answers, freePort, OwnServer } from "./own-server";

/** A redis-server of the test's own, without persistence (see OwnServer). */
export class OwnRedisServer extends OwnServer {
	static async start(): Promise<OwnRedisServer> {
		const port = await freePort();
		const args = ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"];
		const server = new OwnRedisServer(port, "redis-server", args, port =>
			answers(port, { send: "PING\r\n", reply: "+PONG" })
		);
		await server.resume();
		return server;
	}

	get url(): string {
		return `redis://127.0.0.1:${this.port}`;
	}
}
