import { once } from "node:events";
import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

/** One request as the stand-in received it, body read whole. */
export interface Received {
	/** The local address it arrived on: which of several stand-ins on one port got it. */
	at: string;
	method: string;
	url: string;
	path: string;
	query: URLSearchParams;
	headers: IncomingHttpHeaders;
	body: string;
}

export type Reply = (req: Received, res: ServerResponse) => void | Promise<void>;

export const json = (res: ServerResponse, status: number, payload: unknown): void => {
	res.writeHead(status, { "Content-Type": "application/json; charset=utf-8" });
	res.end(JSON.stringify(payload));
};

export const redirect = (res: ServerResponse, status: number, location: string): void => {
	res.writeHead(status, { Location: location });
	res.end();
};

/** Listens on `host:port` (0: any free port) and resolves the port. */
export async function listen(server: Server, host: string, port = 0): Promise<number> {
	await new Promise<void>((resolve, reject) => {
		server.once("error", reject);
		server.listen(port, host, () => {
			server.off("error", reject);
			resolve();
		});
	});
	return (server.address() as AddressInfo).port;
}

/** Closes a server and the connections it holds; nothing when it does not listen. */
export async function shut(server: Server | undefined): Promise<void> {
	if (!server?.listening) return;
	server.closeAllConnections();
	server.close();
	await once(server, "close");
}

/** A port on `host` that nothing listens on (it listened a moment ago, so it is free). */
export async function closedPort(host = "127.0.0.1"): Promise<number> {
	const server = createServer();
	const port = await listen(server, host);
	await shut(server);
	return port;
}

/**
 * The HTTP stand-in for what a tool calls out to (an external API, the orchestrator, an embeddings
 * service, a callback receiver): records every request in `received`, then lets `reply` answer it.
 * `reply` may be swapped by a test; `connections` counts TCP connections (a victim must see none).
 */
export class Upstream {
	received: Received[] = [];
	connections = 0;
	readonly server: Server;
	port = 0;

	private constructor(
		readonly host: string,
		public reply: Reply
	) {
		this.server = createServer((req, res) => {
			const chunks: Buffer[] = [];
			req.on("data", (chunk: Buffer) => chunks.push(chunk));
			req.on("end", () => {
				const url = new URL(req.url ?? "/", "http://upstream");
				const received: Received = {
					at: req.socket.localAddress ?? "",
					method: req.method ?? "",
					url: req.url ?? "",
					path: url.pathname,
					query: url.searchParams,
					headers: req.headers,
					body: Buffer.concat(chunks).toString("utf8")
				};
				this.received.push(received);
				void this.reply(received, res);
			});
		});
		this.server.on("connection", () => this.connections++);
	}

	static async start(reply: Reply, options: { host?: string; port?: number } = {}): Promise<Upstream> {
		const upstream = new Upstream(options.host ?? "127.0.0.1", reply);
		upstream.port = await listen(upstream.server, upstream.host, options.port);
		return upstream;
	}

	/** A listener that must never be reached: it only counts connections. */
	static victim(host: string, port?: number): Promise<Upstream> {
		return Upstream.start((_req, res) => void res.end("you should not be here"), { host, port });
	}

	url(path = ""): string {
		return `http://${this.host.includes(":") ? `[${this.host}]` : this.host}:${this.port}${path}`;
	}

	/** Requests received on `path`. */
	hits(path: string): number {
		return this.received.filter(r => r.path === path).length;
	}

	close(): Promise<void> {
		return shut(this.server);
	}
}

/** What a paced stream got to send before the client hung up. */
export interface PacedStream {
	written: number;
	completed: boolean;
	closed: Promise<unknown>;
}

/**
 * Streams `bytes` in 64 KiB chunks, pausing `pauseMs` between them, so a test can see that the
 * client hung up long before the end.
 */
export function streamPaced(
	res: ServerResponse,
	bytes: number,
	contentType: string,
	pauseMs: number
): PacedStream {
	res.writeHead(200, { "Content-Type": contentType });
	const state: PacedStream = { written: 0, completed: false, closed: once(res, "close") };
	const chunk = Buffer.alloc(64 * 1024, "x");
	void (async () => {
		while (state.written < bytes && !res.destroyed) {
			res.write(chunk);
			state.written += chunk.length;
			await new Promise(resolve => setTimeout(resolve, pauseMs));
		}
		if (!res.destroyed) {
			state.completed = true;
			res.end();
		}
	})();
	return state;
}
