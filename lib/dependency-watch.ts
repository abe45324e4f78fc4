import type { RedisClient } from "./redis";
import type { ServiceBroker } from "moleculer";
import type { NatsConnection } from "nats";
import { dependencyDown, stopping } from "./errors";

/** Where a dependency's outage is told: one line when it begins, one when it ends. */
export interface OutageLog {
	warn(message: string): void;
	info(message: string): void;
}

export type DependencyState = "ok" | "down";

/** The part of Moleculer's (untyped) endpoint list this reads. */
interface RemoteEndpoints {
	hasLocal(): boolean;
	endpoints: { node: { lastHeartbeatTime: number } }[];
}

/** The body of `GET /health/ready`: 503 when `failed` names any check. */
export interface Readiness {
	status: "ready" | "unavailable";
	checks: Record<string, DependencyState>;
	failed: string[];
}

export function readiness(checks: Record<string, DependencyState>): Readiness {
	const failed = Object.keys(checks).filter(name => checks[name] !== "ok");
	return { status: failed.length ? "unavailable" : "ready", checks, failed };
}

/**
 * What a gateway knows right now of the dependencies its requests need, so a request that needs one
 * that is down answers 503 at once instead of waiting on it, and readiness names it. Redis: the
 * client's own connection status. The transporter: the NATS client's status events, because
 * Moleculer's `transit.connected` stays true while the client reconnects.
 */
export class DependencyWatch {
	private transporterUp = true;
	/**
	 * `process.uptime()` seconds when the transporter came back: a remote node not heard from since may
	 * not have resubscribed yet, and NATS drops a request nobody is subscribed to (a 30 s hang).
	 */
	private backAtUptime = -1;
	private stopped = false;
	private statusIterator: { stop?(): void } | null = null;

	constructor(
		private readonly broker: ServiceBroker,
		private readonly redis: RedisClient | null,
		private readonly log: OutageLog
	) {}

	/** Follows the NATS connection from now on (a node without a transporter has nothing to follow). */
	start(): void {
		const client = (this.broker.transit?.tx as { client?: NatsConnection } | undefined)?.client;
		if (!client || typeof client.status !== "function") return;
		const statuses = client.status() as ReturnType<NatsConnection["status"]> & { stop?(): void };
		this.statusIterator = statuses;
		void (async () => {
			for await (const status of statuses) {
				if (this.stopped) return;
				if (status.type === "disconnect") this.transporterChanged(false);
				else if (status.type === "reconnect") this.transporterChanged(true);
			}
		})().catch(() => undefined);
	}

	stop(): void {
		this.stopped = true;
		this.statusIterator?.stop?.();
	}

	/** This node's own services and each dependency it has, by name, as readiness reports them. */
	checks(): Record<string, DependencyState> {
		// The gateway listens while the node's other services still start; they answer 503 until then.
		const checks: Record<string, DependencyState> = { services: this.broker.started ? "ok" : "down" };
		const transit = this.broker.transit;
		if (transit) checks.transporter = transit.connected && this.transporterUp ? "ok" : "down";
		if (this.redis) checks.redis = this.redis.status === "ready" ? "ok" : "down";
		return checks;
	}

	/**
	 * Throws a 503 when this node is stopping, naming the dependency when Redis is down, or when
	 * `action` is served only by other nodes and the transporter is down.
	 */
	require(action?: string): void {
		// A stopping node drains what it took; new work goes to another node.
		if (this.broker.stopping) throw stopping();
		if (this.redis && this.redis.status !== "ready") throw dependencyDown("Redis");
		if (!action || !this.broker.transit) return;
		const endpoints = this.broker.registry.actions.get(action) as RemoteEndpoints | undefined;
		if (!endpoints || endpoints.hasLocal()) return;
		if (!this.transporterUp) throw dependencyDown("transporter");
		// Moleculer keeps heartbeat times in whole seconds: "since" means a later second.
		if (
			this.backAtUptime >= 0 &&
			!endpoints.endpoints.some(ep => ep.node.lastHeartbeatTime > this.backAtUptime)
		)
			throw dependencyDown("transporter", 1);
	}

	private transporterChanged(up: boolean): void {
		if (up === this.transporterUp) return;
		this.transporterUp = up;
		if (up) this.backAtUptime = Math.round(process.uptime());
		if (up) this.log.info("Transporter connection is back");
		else this.log.warn("Transporter connection lost: calls to other nodes answer 503 until it is back");
	}
}
