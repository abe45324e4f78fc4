import { systemClock, type Clock, type ClockTimer } from "../clock";
import type { Lease, ReapResult, TaskQueue } from "./task-queue";

export interface TaskWorkerOptions {
	/** Tasks this node runs at once. */
	concurrency: number;
	/** A claimed task is redelivered this long after its worker stops renewing it. */
	leaseMs: number;
	reapIntervalMs: number;
	/** Deliveries (first run + redeliveries after lost workers) before a task is dead-lettered. */
	maxDeliveries: number;
	/** An idle node looks for work again this often even without a wake-up. */
	pollIntervalMs: number;
}

export interface TaskWorkerHooks {
	/** False once the node is shutting down: workers finish what they hold and take nothing more. */
	canClaim(): boolean;
	/** Runs one claimed task to its end (finish or retry), presenting the lease. */
	handle(lease: Lease): Promise<void>;
	onReaped(result: ReapResult): Promise<void>;
	onError(message: string, err: unknown): void;
}

/**
 * Most tasks one claim takes: on Redis one script call (and one round trip) for them all, short
 * enough not to hold Redis up for others (each task is about a dozen commands inside the script).
 */
const MAX_CLAIM = 16;

/**
 * The loop of one executor node: one claimer takes as many tasks as the node has free slots (up to
 * `concurrency` at once, at most MAX_CLAIM per claim), runs each while keeping its lease alive, and a
 * reaper returns the tasks of dead workers. When the queues are empty the claimer sleeps until a
 * wake-up or its next poll: one claim per poll per node, whatever the concurrency. `stop` takes no
 * new work and resolves once the tasks in hand are done (graceful SIGTERM).
 */
export class TaskWorkers {
	private running = false;
	/** Once stopped, a late `start` (the node waited for the registry) must not start the loop again. */
	private stopped = false;
	private claimer: Promise<void> | null = null;
	private readonly inHand = new Set<Promise<void>>();
	private reaper: ClockTimer | null = null;
	/** Ends the claimer's wait: for work (sleeping) or for a free slot (every slot busy). */
	private waking: (() => void) | null = null;
	private waitingForSlot = false;
	/** A wake-up came while the claimer was claiming: its next wait for work ends at once. */
	private wokenWhileClaiming = false;

	constructor(
		private readonly queue: TaskQueue,
		private readonly options: TaskWorkerOptions,
		private readonly hooks: TaskWorkerHooks,
		private readonly clock: Clock = systemClock
	) {}

	start(): void {
		if (this.running || this.stopped) return;
		this.running = true;
		this.claimer = this.claimLoop();
		this.reaper = this.clock.setInterval(() => void this.reap(), this.options.reapIntervalMs);
	}

	/**
	 * Work was just submitted or redelivered: a sleeping claimer looks now instead of at its next poll,
	 * and one that is claiming looks again once done (its claim may have missed the new work).
	 */
	wake(): void {
		if (this.waking) this.waking();
		else this.wokenWhileClaiming = true;
	}

	async stop(): Promise<void> {
		this.stopped = true;
		this.running = false;
		if (this.reaper) this.clock.clear(this.reaper);
		this.wake();
		await this.claimer;
		await Promise.all(this.inHand);
	}

	private async claimLoop(): Promise<void> {
		while (this.running && this.hooks.canClaim()) {
			const free = this.options.concurrency - this.inHand.size;
			if (free === 0) {
				this.waitingForSlot = true;
				await this.wait(null);
				this.waitingForSlot = false;
				continue;
			}
			const asked = Math.min(free, MAX_CLAIM);
			let taken = 0;
			try {
				const leases = await this.queue.claim(this.options.leaseMs, asked);
				for (const lease of leases) this.hold(lease);
				taken = leases.length;
			} catch (err) {
				// Whatever fails, the loop goes on: a claimer that ended would leave the node idle for good.
				this.hooks.onError("claiming tasks failed", err);
			}
			// Fewer than asked: the queues are empty for now (or Redis failed), unless work came meanwhile.
			if (taken < asked && !this.wokenWhileClaiming) await this.wait(this.options.pollIntervalMs);
			this.wokenWhileClaiming = false;
		}
	}

	/** Until `wake` (or a freed slot, when waiting for one), or `ms` when given. */
	private wait(ms: number | null): Promise<void> {
		return new Promise(resolve => {
			const timer = ms === null ? null : this.clock.setTimeout(() => this.waking?.(), ms);
			this.waking = () => {
				if (timer) this.clock.clear(timer);
				this.waking = null;
				resolve();
			};
		});
	}

	private hold(lease: Lease): void {
		const running = this.run(lease).finally(() => {
			this.inHand.delete(running);
			if (this.waitingForSlot) this.waking?.();
		});
		this.inHand.add(running);
	}

	private async run(lease: Lease): Promise<void> {
		const renew = this.clock.setInterval(
			() => {
				this.queue
					.extend(lease, this.options.leaseMs)
					.catch(err => this.hooks.onError("renewing a lease failed", err));
			},
			Math.max(10, Math.floor(this.options.leaseMs / 3))
		);
		try {
			await this.hooks.handle(lease);
		} catch (err) {
			this.hooks.onError(`task ${lease.task.task_id} failed to be handled`, err);
		} finally {
			this.clock.clear(renew);
		}
	}

	private async reap(): Promise<void> {
		try {
			const result = await this.queue.reap(this.options.maxDeliveries);
			if (result.redelivered || result.promoted) this.wake();
			await this.hooks.onReaped(result);
		} catch (err) {
			this.hooks.onError("reaping expired leases failed", err);
		}
	}
}
