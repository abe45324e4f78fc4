import { randomUUID } from "crypto";
import type { Socket } from "net";
import type { RedisClient } from "../lib/redis";
import { runScript } from "../lib/redis";
import type { Service, ServiceSchema } from "moleculer";
import WebSocket from "ws";
import { MetricsSamplerMixin } from "../mixins/metrics-sampler.mixin";
import { RedisMixin, type RedisLocals, type RedisSettings } from "../mixins/redis.mixin";
import { METRICS } from "../lib/metrics/names";
import { MemoryOutbox } from "../lib/outbox/memory-outbox";
import { DEFAULT_OUTBOX_MAX, type Outbox } from "../lib/outbox/outbox";
import { framesChannel } from "../lib/outbox/redis-outbox";
import { outboxFor } from "../lib/tasks/backend";
import { config } from "../lib/config";
import { systemClock, type Clock, type ClockTimer } from "../lib/clock";

/** The notifier's own settings; RedisMixin brings the rest of NotifierSettings. */
interface NotifierOwnSettings {
	/** ORCHESTRATOR_WS_URL; unset = no connection, frames wait in the outbox. */
	wsUrl?: string;
	serviceToken?: string;
	serviceName: string;
	initialBackoffMs: number;
	backoffFactor: number;
	maxBackoffMs: number;
	pingIntervalMs: number;
	/** Time from dialling to `{"status": "authenticated"}` before the attempt counts as failed. */
	authTimeoutMs: number;
	/** Frames kept while the orchestrator is away; beyond it the oldest are dropped. */
	outboxMax: number;
	/** Frames read from the outbox per step of a drain. */
	drainBatchSize: number;
	/** Lifetime of the Redis leader lock; the holder renews it every third of it. */
	leaderTtlMs: number;
	/** Time of the backoff, handshake, ping and leader-lock timers: the system clock unless a test passes one. */
	clock: Clock;
	$secureSettings: string[];
}

export type NotifierSettings = NotifierOwnSettings & RedisSettings;

/** What `notifier.state` answers, for operators (REPL, metrics). */
export interface NotifierState {
	connected: boolean;
	authenticated: boolean;
	leader: boolean;
	outbox_size: number;
	/** Frames dropped because the outbox was full (by every node, on Redis). */
	outbox_dropped: number;
	/** Failed connection attempts since the last successful authentication. */
	reconnect_attempts: number;
	/** Time until the next connection attempt, or null when none is scheduled. */
	next_retry_ms: number | null;
}

interface NotifierMethods {
	sampleMetrics(): Promise<void>;
	connect(): void;
	onReply(ws: WebSocket, data: WebSocket.RawData): void;
	onClose(ws: WebSocket): void;
	dropSocket(): WebSocket | null;
	scheduleReconnect(): void;
	drain(): void;
	sendPending(): Promise<void>;
	noticeDrops(): Promise<void>;
	lead(): Promise<void>;
	follow(reason: string): void;
	followFrames(): void;
	wake(message: WakeMessage): Promise<void>;
}

interface NotifierLocals extends RedisLocals {
	outbox: Outbox;
	ws: WebSocket | null;
	authenticated: boolean;
	/** Whether a pong came back since the last ping. */
	alive: boolean;
	leader: boolean;
	/** Value of the leader lock while this instance holds it. */
	lockToken: string;
	/** Receives recorded frames and leader wake-ups (Redis only). */
	subscriber: RedisClient | null;
	backoffMs: number;
	attempts: number;
	retryAt: number | null;
	retryTimer: ClockTimer | null;
	authTimer: ClockTimer | null;
	pingTimer: ClockTimer | null;
	leaderTimer: ClockTimer | null;
	draining: Promise<void> | null;
	drainAgain: boolean;
	/** Drop count last seen, to warn once per burst of drops. */
	droppedSeen: number;
	/** Unsubscribes from the memory outbox. */
	unsubscribe: (() => void) | null;
	stopping: boolean;
}

type NotifierThis = Service<NotifierSettings> & NotifierMethods & NotifierLocals;

/** "released": the leader stepped down. */
type WakeMessage = "released";

/** Renews the lock only while this instance still holds it (it may have expired and moved on). */
const RENEW_SCRIPT = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
`;

const RELEASE_SCRIPT = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`;

const leaderKey = (prefix: string) => `${prefix}notifier:leader`;
const wakeChannel = (prefix: string) => `${prefix}notifier:wake`;

const send = (ws: WebSocket, frame: string) =>
	new Promise<void>((resolve, reject) => ws.send(frame, err => (err ? reject(err) : resolve())));

/**
 * Sends frames in order with the TCP socket corked, so a batch leaves in one write instead of one
 * system call per frame (about 7% of a gateway's CPU under queued load). Resolves how many were
 * written before the first failure, and that failure if any. `_socket` is ws's own untyped field;
 * without it the frames leave one write each, as ws sends them.
 */
async function sendAll(ws: WebSocket, frames: string[]): Promise<{ sent: number; error?: Error }> {
	const socket = (ws as unknown as { _socket?: Socket | null })._socket;
	socket?.cork();
	let writes: Promise<void>[];
	try {
		writes = frames.map(frame => send(ws, frame));
	} finally {
		socket?.uncork();
	}
	const results = await Promise.allSettled(writes);
	const failed = results.findIndex(result => result.status === "rejected");
	if (failed < 0) return { sent: frames.length };
	return { sent: failed, error: (results[failed] as PromiseRejectedResult).reason as Error };
}

/**
 * Forwards task updates to the orchestrator over its WebSocket. The task queue
 * records every update in the outbox together with the status change it reports; the notifier drains
 * the outbox in order, so nothing is lost while it, the transporter or the orchestrator is away. With
 * Redis the outbox is shared and only the node holding the leader lock connects and drains; recorded
 * frames are published on a Redis channel that wakes it, and it drains on every lock renewal too.
 */
const NotifierService: ServiceSchema<NotifierOwnSettings, NotifierMethods, NotifierLocals, NotifierThis> = {
	name: "notifier",
	mixins: [
		RedisMixin(),
		MetricsSamplerMixin({ metrics: ["outboxSize", "notifierConnected", "notifierLeader"] })
	],

	settings: {
		wsUrl: config().orchestratorWsUrl,
		serviceToken: config().serviceToken,
		serviceName: "tool-registry",
		initialBackoffMs: 1000,
		backoffFactor: 1.5,
		maxBackoffMs: 30000,
		pingIntervalMs: 30000,
		authTimeoutMs: 10000,
		outboxMax: DEFAULT_OUTBOX_MAX,
		drainBatchSize: 100,
		leaderTtlMs: 10000,
		clock: systemClock,
		// The clock is this process's own: not a setting to publish to other nodes.
		$secureSettings: ["serviceToken", "clock"]
	},

	actions: {
		state: {
			visibility: "public",
			async handler(this: NotifierThis): Promise<NotifierState> {
				return {
					connected: this.ws?.readyState === WebSocket.OPEN,
					authenticated: this.authenticated,
					leader: this.leader,
					outbox_size: await this.outbox.size(),
					outbox_dropped: await this.outbox.dropped(),
					reconnect_attempts: this.attempts,
					next_retry_ms: this.retryAt === null ? null : Math.max(this.retryAt - this.settings.clock.now(), 0)
				};
			}
		}
	},

	methods: {
		async sampleMetrics(this: NotifierThis) {
			this.broker.metrics.set(METRICS.outboxSize, await this.outbox.size());
			this.broker.metrics.set(METRICS.notifierConnected, this.authenticated ? 1 : 0);
			this.broker.metrics.set(METRICS.notifierLeader, this.leader ? 1 : 0);
		},

		connect(this: NotifierThis) {
			const { settings } = this;
			this.retryTimer = null;
			this.retryAt = null;
			if (this.stopping || !this.leader || !settings.wsUrl || this.ws) return;
			const ws = new WebSocket(settings.wsUrl);
			this.ws = ws;
			// Covers dialling and the handshake: a silent orchestrator must not hold the connection forever.
			this.authTimer = settings.clock.setTimeout(() => {
				this.logger.warn(`The orchestrator did not authenticate within ${settings.authTimeoutMs} ms`);
				ws.terminate();
			}, settings.authTimeoutMs);
			const hello = JSON.stringify({
				service_token: settings.serviceToken ?? null,
				service_name: settings.serviceName
			});
			ws.on("open", () => ws.send(hello));
			ws.on("message", data => this.onReply(ws, data));
			ws.on("pong", () => (this.alive = true));
			ws.on("error", err => this.logger.warn(`Orchestrator WebSocket: ${err.message}`));
			ws.on("close", () => this.onClose(ws));
		},

		onReply(this: NotifierThis, ws: WebSocket, data: WebSocket.RawData) {
			// After the handshake the orchestrator has nothing to tell this service.
			if (ws !== this.ws || this.authenticated) return;
			let reply: { status?: unknown } | null = null;
			try {
				reply = JSON.parse(data.toString()) as { status?: unknown } | null;
			} catch {
				// Not JSON: rejected below like any other unexpected reply.
			}
			if (reply?.status !== "authenticated") {
				this.logger.warn(`The orchestrator refused the handshake: ${data.toString().slice(0, 200)}`);
				ws.terminate();
				return;
			}
			this.settings.clock.clear(this.authTimer!);
			this.authTimer = null;
			this.authenticated = true;
			this.attempts = 0;
			this.backoffMs = this.settings.initialBackoffMs;
			this.alive = true;
			this.pingTimer = this.settings.clock.setInterval(() => {
				// No pong since the last ping: the connection is half-open, drop it and reconnect.
				if (!this.alive) return ws.terminate();
				this.alive = false;
				ws.ping();
			}, this.settings.pingIntervalMs);
			this.logger.info("Connected and authenticated to the orchestrator");
			this.drain();
		},

		onClose(this: NotifierThis, ws: WebSocket) {
			if (ws !== this.ws) return;
			this.dropSocket();
			this.scheduleReconnect();
		},

		/** Forgets the current socket and its timers; the caller decides how to end it. */
		dropSocket(this: NotifierThis) {
			const ws = this.ws;
			if (this.authTimer) this.settings.clock.clear(this.authTimer);
			if (this.pingTimer) this.settings.clock.clear(this.pingTimer);
			this.authTimer = this.pingTimer = null;
			this.ws = null;
			this.authenticated = false;
			return ws;
		},

		scheduleReconnect(this: NotifierThis) {
			if (this.stopping || !this.leader) return;
			const delay = this.backoffMs;
			this.backoffMs = Math.min(delay * this.settings.backoffFactor, this.settings.maxBackoffMs);
			this.attempts++;
			this.retryAt = this.settings.clock.now() + delay;
			this.retryTimer = this.settings.clock.setTimeout(() => this.connect(), delay);
			this.logger.info(
				`Reconnecting to the orchestrator in ${Math.round(delay)} ms (attempt ${this.attempts})`
			);
		},

		/** Starts a drain, or asks the running one to go again, so frames are never sent concurrently. */
		drain(this: NotifierThis) {
			if (this.draining) {
				this.drainAgain = true;
				return;
			}
			this.draining = this.sendPending()
				.catch(err => this.logger.warn(`Sending to the orchestrator stopped: ${(err as Error).message}`))
				.finally(() => {
					this.draining = null;
					if (this.drainAgain) {
						this.drainAgain = false;
						this.drain();
					}
				});
		},

		/** Sends the outbox in order until it is empty or a send fails; what was not sent stays. */
		async sendPending(this: NotifierThis) {
			const ws = this.ws;
			if (ws && this.authenticated) await this.noticeDrops();
			while (ws && ws === this.ws && this.authenticated) {
				const frames = await this.outbox.peek(this.settings.drainBatchSize);
				if (frames.length === 0) return;
				const { sent, error } = await sendAll(ws, frames);
				if (sent > 0) await this.outbox.ack(sent);
				if (error) throw error;
			}
		},

		/** Warns once per drain that finds frames dropped by a full outbox since the last one. */
		async noticeDrops(this: NotifierThis) {
			const dropped = await this.outbox.dropped();
			if (dropped > this.droppedSeen)
				this.logger.warn(
					`Notification outbox full (${this.settings.outboxMax}): ${dropped - this.droppedSeen} oldest frames dropped`
				);
			this.droppedSeen = dropped;
		},

		/** One round of the election: the leader renews its lock (and drains), the others try to take it. */
		async lead(this: NotifierThis) {
			const key = leaderKey(this.settings.redisPrefix);
			const ttl = this.settings.leaderTtlMs;
			try {
				if (this.leader) {
					const renewed = await runScript(this.redis!, RENEW_SCRIPT, 1, key, this.lockToken, ttl);
					if (renewed === 1) this.drain();
					else this.follow("the leader lock was lost");
				} else if (!this.stopping && (await this.redis!.set(key, this.lockToken, "PX", ttl, "NX")) === "OK") {
					this.leader = true;
					this.logger.info("This notifier is now the leader");
					this.followFrames();
					this.connect();
				}
			} catch (err) {
				// Unable to prove the lock is still ours: step down rather than risk two senders.
				if (this.leader) this.follow(`Redis failed: ${(err as Error).message}`);
			}
		},

		follow(this: NotifierThis, reason: string) {
			this.logger.warn(`This notifier is no longer the leader: ${reason}`);
			this.leader = false;
			this.followFrames();
			if (this.retryTimer) this.settings.clock.clear(this.retryTimer);
			this.retryTimer = this.retryAt = null;
			this.attempts = 0;
			this.backoffMs = this.settings.initialBackoffMs;
			this.dropSocket()?.close(1000, "no longer the leader");
		},

		/**
		 * Only the leader takes the recorded frames' wake-ups: each frame is published to every
		 * subscriber, so followers would receive all of them for nothing. Subscribed, the leader drains
		 * what was recorded meanwhile; a failure waits for Redis's return or the next renewal's drain.
		 */
		followFrames(this: NotifierThis) {
			const frames = framesChannel(this.settings.redisPrefix);
			const subscriber = this.subscriber;
			if (!subscriber) return;
			if (this.leader)
				subscriber.subscribe(frames).then(
					() => this.leader && this.drain(),
					() => undefined
				);
			else subscriber.unsubscribe(frames).catch(() => undefined);
		},

		async wake(this: NotifierThis, message: WakeMessage) {
			try {
				await this.redis?.publish(wakeChannel(this.settings.redisPrefix), message);
			} catch (err) {
				// Best effort: the leader also drains on every renewal, and a released lock expires anyway.
				this.logger.debug(`Wake-up not published: ${(err as Error).message}`);
			}
		}
	},

	created(this: NotifierThis) {
		const { settings } = this;
		this.outbox = outboxFor(this.broker, {
			redis: this.redis,
			redisPrefix: settings.redisPrefix,
			outboxMax: settings.outboxMax
		});
		// Two brokers of one process share a nodeID: the suffix tells their locks apart.
		this.lockToken = `${this.broker.nodeID}:${randomUUID()}`;
		this.ws = this.subscriber = null;
		this.authenticated = this.alive = false;
		this.backoffMs = settings.initialBackoffMs;
		this.attempts = 0;
		this.retryAt = this.retryTimer = this.authTimer = this.pingTimer = this.leaderTimer = null;
		this.draining = null;
		this.drainAgain = false;
		this.droppedSeen = 0;
		this.unsubscribe = null;
		this.stopping = false;
		// Without Redis this node is the only notifier of its outbox.
		this.leader = !this.redis;
	},

	async started(this: NotifierThis) {
		if (this.outbox instanceof MemoryOutbox) {
			this.unsubscribe = this.outbox.subscribe(() => this.drain());
			this.droppedSeen = await this.outbox.dropped();
			return this.connect();
		}
		// A node that cannot connect must not hold the lock, or it would keep the shared outbox undrained.
		if (!this.redis || !this.settings.wsUrl) return;
		const frames = framesChannel(this.settings.redisPrefix);
		this.subscriber = this.redis.duplicate();
		// Reported by the service's own connection; a subscriber only resubscribes when Redis is back.
		this.subscriber.on("error", () => undefined);
		this.subscriber.on("message", (channel: string, message: string) => {
			if (channel === frames) {
				if (this.leader) this.drain();
			} else if ((message as WakeMessage) === "released" && !this.leader) void this.lead();
		});
		// Once Redis is back, the frames subscription matches the role again (see followFrames).
		this.subscriber.on("ready", () => this.followFrames());
		await this.subscriber.subscribe(wakeChannel(this.settings.redisPrefix));
		await this.lead();
		this.leaderTimer = this.settings.clock.setInterval(() => void this.lead(), this.settings.leaderTtlMs / 3);
	},

	async stopped(this: NotifierThis) {
		this.stopping = true;
		this.unsubscribe?.();
		if (this.leaderTimer) this.settings.clock.clear(this.leaderTimer);
		if (this.retryTimer) this.settings.clock.clear(this.retryTimer);
		this.retryTimer = this.retryAt = this.leaderTimer = null;
		this.dropSocket()?.close(1000, "notifier stopping");
		await this.draining;
		await this.subscriber?.quit().catch(() => undefined);
		if (!this.redis || !this.settings.wsUrl) return;
		this.leader = false;
		try {
			// Released even when not known to be held: a lock taken by an election still in flight was
			// requested earlier on this connection, so Redis applies it first and this deletes it.
			const key = leaderKey(this.settings.redisPrefix);
			if ((await runScript(this.redis, RELEASE_SCRIPT, 1, key, this.lockToken)) === 1)
				await this.wake("released");
		} catch (err) {
			this.logger.warn(`Leader lock not released (it expires by itself): ${(err as Error).message}`);
		}
	}
};

export default NotifierService;
