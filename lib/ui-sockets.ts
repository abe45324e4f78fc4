import WebSocket from "ws";
import type { Clock, ClockTimer } from "./clock";
import { GLOBAL_TENANT } from "./tenancy";

export interface UiSocketsOptions {
	/** Bytes queued for one client beyond which it is closed as a slow consumer. */
	maxBufferedBytes: number;
	/** Ping interval; a client that has not answered one ping by the next is terminated. */
	heartbeatMs: number;
	/** How long `close()` waits for clients to answer the close handshake before cutting them off. */
	closeGraceMs: number;
	/** Time of the heartbeat: the system clock unless a test passes one. */
	clock: Clock;
	/** Told when the first client arrives (true) and when the last one leaves (false). */
	onOccupied?: (occupied: boolean) => void;
}

interface Client {
	tenantId: string;
	alive: boolean;
}

const READ_ONLY = JSON.stringify({ error: "read-only" });

/** Close code 1013 "Try Again Later": the client fell behind and should reconnect and re-read. */
const SLOW_CONSUMER = 1013;
const GOING_AWAY = 1001;

/**
 * The gateway's connected UI WebSocket clients, grouped by tenant. Clients only listen: every
 * frame they send is answered with a read-only error, and a client that stops reading is dropped
 * rather than letting its queue grow in the gateway's memory.
 */
export class UiSockets {
	private readonly clients = new Map<WebSocket, Client>();
	private readonly byTenant = new Map<string, Set<WebSocket>>();
	/** Runs only while clients are connected, so an idle gateway holds no timer. */
	private heartbeat: ClockTimer | null = null;

	constructor(private readonly options: UiSocketsOptions) {}

	get size(): number {
		return this.clients.size;
	}

	/** Takes over an open socket authenticated for `tenantId`. */
	add(tenantId: string, socket: WebSocket): void {
		const client: Client = { tenantId, alive: true };
		this.clients.set(socket, client);
		let tenantSockets = this.byTenant.get(tenantId);
		if (!tenantSockets) this.byTenant.set(tenantId, (tenantSockets = new Set()));
		tenantSockets.add(socket);

		socket.on("pong", () => (client.alive = true));
		socket.on("message", () => this.send(socket, READ_ONLY));
		// ws closes the socket itself on protocol errors (e.g. 1009 over maxPayload); without a
		// listener the 'error' event would be thrown and take the process down.
		socket.on("error", () => undefined);
		socket.on("close", () => this.remove(socket));

		if (this.clients.size === 1) this.options.onOccupied?.(true);
		this.heartbeat ??= this.options.clock.setInterval(() => this.sweep(), this.options.heartbeatMs);
	}

	remove(socket: WebSocket): void {
		const client = this.clients.get(socket);
		if (!client) return;
		this.clients.delete(socket);
		const tenantSockets = this.byTenant.get(client.tenantId);
		tenantSockets?.delete(socket);
		if (tenantSockets?.size === 0) this.byTenant.delete(client.tenantId);
		if (this.clients.size > 0) return;
		this.options.onOccupied?.(false);
		if (this.heartbeat) {
			this.options.clock.clear(this.heartbeat);
			this.heartbeat = null;
		}
	}

	/** Whether a frame of `tenantId` would reach any client: callers need not build frames for nobody. */
	reaches(tenantId: string): boolean {
		return tenantId === GLOBAL_TENANT ? this.clients.size > 0 : this.byTenant.has(tenantId);
	}

	/**
	 * Sends `frame` to the clients of `tenantId`; the global tenant's frames go to every client,
	 * since global tools are visible to all tenants. Returns how many clients it was sent to.
	 */
	publish(tenantId: string, frame: unknown): number {
		if (!this.reaches(tenantId)) return 0;
		const targets = tenantId === GLOBAL_TENANT ? this.clients.keys() : (this.byTenant.get(tenantId) ?? []);
		const data = JSON.stringify(frame);
		let sent = 0;
		for (const socket of targets) if (this.send(socket, data)) sent++;
		return sent;
	}

	/** Closes every client (shutdown); resolves once all are closed or cut off after the grace period. */
	async close(): Promise<void> {
		const sockets = [...this.clients.keys()];
		await Promise.all(
			sockets.map(
				socket =>
					new Promise<void>(resolve => {
						// An unanswered close handshake would keep the HTTP server from closing.
						const cutOff = setTimeout(() => socket.terminate(), this.options.closeGraceMs);
						socket.once("close", () => {
							clearTimeout(cutOff);
							resolve();
						});
						socket.close(GOING_AWAY, "Server shutting down");
					})
			)
		);
	}

	private send(socket: WebSocket, data: string): boolean {
		if (socket.readyState !== WebSocket.OPEN) return false;
		if (socket.bufferedAmount > this.options.maxBufferedBytes) {
			// Once closing, the socket is skipped by every later send; 'close' removes it.
			socket.close(SLOW_CONSUMER, "Slow consumer");
			return false;
		}
		socket.send(data);
		return true;
	}

	private sweep(): void {
		for (const [socket, client] of this.clients) {
			// No pong since the last sweep: the peer is gone ('close' then removes it).
			if (!client.alive) {
				socket.terminate();
				continue;
			}
			client.alive = false;
			socket.ping();
		}
	}
}
