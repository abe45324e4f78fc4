import type { Session } from "./api";
import type { LiveFrame } from "./types";

/** `off`: the credential may not read the feed (no `tools:read`), so no connection is tried. */
export type LiveState = "connecting" | "open" | "closed" | "off";

const base64url = (text: string) =>
	btoa(String.fromCharCode(...new TextEncoder().encode(text)))
		.replace(/\+/g, "-")
		.replace(/\//g, "_")
		.replace(/=+$/, "");

/** Frames kept for the event feed; older ones are dropped. */
const HISTORY = 200;

/**
 * The gateway's `/ws` feed of the tenant's tool and task events. The credential travels as a
 * WebSocket subprotocol (browsers cannot set headers there), never in the URL. Reconnects with
 * backoff after a drop, and keeps the last frames for the event feed view.
 */
export class LiveFeed {
	state: LiveState = "connecting";
	/** Newest first; `seq` identifies a frame for as long as it is kept. */
	readonly history: { seq: number; frame: LiveFrame }[] = [];
	private seq = 0;
	private socket: WebSocket | null = null;
	private readonly listeners = new Set<() => void>();
	private readonly frameListeners = new Set<(frame: LiveFrame) => void>();
	private retryMs = 1000;
	private retryTimer: number | undefined;
	private stopped = false;

	constructor(private readonly session: Session) {
		if (session.reads === false) this.state = "off";
		else this.connect();
	}

	/** Called on every state change and frame; answers the unsubscribe function. */
	onChange(listener: () => void): () => void {
		this.listeners.add(listener);
		return () => this.listeners.delete(listener);
	}

	onFrame(listener: (frame: LiveFrame) => void): () => void {
		this.frameListeners.add(listener);
		return () => this.frameListeners.delete(listener);
	}

	close(): void {
		this.stopped = true;
		window.clearTimeout(this.retryTimer);
		this.socket?.close(1000);
	}

	private connect(): void {
		const protocols = ["tool-registry", `tool-registry.bearer.${base64url(this.session.credential)}`];
		if (this.session.tenant) protocols.push(`tool-registry.tenant.${base64url(this.session.tenant)}`);
		const scheme = location.protocol === "https:" ? "wss:" : "ws:";
		const socket = new WebSocket(`${scheme}//${location.host}/ws`, protocols);
		this.socket = socket;
		this.setState("connecting");
		socket.onopen = () => {
			this.retryMs = 1000;
			this.setState("open");
		};
		socket.onmessage = message => {
			let frame: LiveFrame;
			try {
				frame = JSON.parse(String(message.data)) as LiveFrame;
			} catch {
				return;
			}
			if (typeof frame?.event !== "string") return;
			this.history.unshift({ seq: ++this.seq, frame });
			this.history.length = Math.min(this.history.length, HISTORY);
			for (const listener of this.frameListeners) listener(frame);
			this.notify();
		};
		socket.onclose = () => {
			if (this.socket !== socket) return;
			this.setState("closed");
			if (this.stopped) return;
			this.retryTimer = window.setTimeout(() => this.connect(), this.retryMs);
			this.retryMs = Math.min(this.retryMs * 2, 30000);
		};
	}

	private setState(state: LiveState): void {
		this.state = state;
		this.notify();
	}

	private notify(): void {
		for (const listener of this.listeners) listener();
	}
}
