import type { AddressInfo } from "net";
import { WebSocketServer, type WebSocket } from "ws";
import { SERVICE_TOKEN } from "./node";

/** One connection the stand-in accepted: every JSON frame it received, the handshake first. */
export interface Connection {
	at: number;
	socket: WebSocket;
	messages: Record<string, any>[];
	authenticated: boolean;
}

/** The orchestrator's side of the notification protocol: checks the handshake and records frames and pings. */
export class OrchestratorStandIn {
	readonly connections: Connection[] = [];
	readonly pings: number[] = [];
	/** The token it accepts; anything else gets `{"status": "error"}` and a close. */
	token = SERVICE_TOKEN;
	open = 0;
	maxOpen = 0;
	/** Called with every frame after the handshake, as it arrives. */
	onFrame: ((frame: Record<string, any>) => void) | null = null;
	/** Kept after stop, to start the next stand-in on the same port. */
	readonly port: number;

	private constructor(private readonly server: WebSocketServer) {
		this.port = (server.address() as AddressInfo).port;
		server.on("connection", socket => {
			const connection: Connection = { at: Date.now(), socket, messages: [], authenticated: false };
			this.connections.push(connection);
			this.maxOpen = Math.max(this.maxOpen, ++this.open);
			socket.on("close", () => this.open--);
			socket.on("ping", () => this.pings.push(Date.now()));
			socket.on("message", data => {
				connection.messages.push(JSON.parse(data.toString()));
				if (connection.messages.length > 1) return this.onFrame?.(connection.messages.at(-1)!);
				const hello = connection.messages[0];
				if (hello.service_token === this.token && hello.service_name === "tool-registry") {
					connection.authenticated = true;
					socket.send(JSON.stringify({ status: "authenticated" }));
				} else {
					socket.send(JSON.stringify({ status: "error" }));
					socket.close(1008, "authentication failed");
				}
			});
		});
	}

	static start(port = 0): Promise<OrchestratorStandIn> {
		return new Promise((resolve, reject) => {
			const server = new WebSocketServer({ host: "127.0.0.1", port });
			server.once("error", reject);
			server.once("listening", () => resolve(new OrchestratorStandIn(server)));
		});
	}

	get url(): string {
		return `ws://127.0.0.1:${this.port}/ws/task_updates`;
	}

	/** Frames after the handshake, in arrival order. */
	get events(): Record<string, any>[] {
		return this.connections.flatMap(connection => connection.messages.slice(1));
	}

	/** Goes away like a crashed orchestrator: connections dropped, port released. */
	stop(): Promise<void> {
		for (const client of this.server.clients) client.terminate();
		return new Promise(resolve => this.server.close(() => resolve()));
	}
}
