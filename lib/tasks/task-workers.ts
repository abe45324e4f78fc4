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
	/** Idle workers look again this often even without a wake-up. */
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
 * The loop of one executor node: `concurrency` workers claim tasks, keep their leases alive while
 * handling them, and a reaper returns the tasks of dead workers. `stop` takes no new work and
 * resolves once the tasks in hand are done (graceful SIGTERM).
 */
export class TaskWorkers {
	private running = false;
	/** Once stopped, a late `start` (the node waited for the registry) must not start loops again. */
	private stopped = false;
	private loops: Promise<void>[] = [];
	private reaper: ClockTimer | null = null;
	private sleepers = new Set<() => void>();

	constructor(
		private readonly queue: TaskQueue,
		private readonly options: TaskWorkerOptions,
		private readonly hooks: TaskWorkerHooks,
		private readonly clock: Clock = systemClock
	) {}

	start(): void {
		if (this.running || this.stopped) return;
		this.running = true;
		this.loops = Array.from({ length: this.options.concurrency }, () => this.loop());
		this.reaper = this.clock.setInterval(() => void this.reap(), this.options.reapIntervalMs);
	}

	/**
	 * Wakes up to `workers` idle workers (all by default): work was just submitted. One task needs one
	 * worker; waking them all would have every other one claim nothing and go back to sleep.
	 */
	wake(workers = this.sleepers.size): void {
		let woken = 0;
		for (const wakeUp of this.sleepers) {
			if (woken++ >= workers) break;
			wakeUp();
		}
	}

	async stop(): Promise<void> {
		this.stopped = true;
		this.running = false;
		if (this.reaper) this.clock.clear(this.reaper);
		this.wake();
		await Promise.all(this.loops);
	}

	private async loop(): Promise<void> {
		while (this.running && this.hooks.canClaim()) {
			let lease: Lease | null = null;
			try {
				lease = await this.queue.claim(this.options.leaseMs);
			} catch (err) {
				this.hooks.onError("claiming a task failed", err);
			}
			if (lease) await this.run(lease);
			else await this.idle();
		}
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

	private idle(): Promise<void> {
		return new Promise(resolve => {
			const done = () => {
				this.clock.clear(timer);
				this.sleepers.delete(done);
				resolve();
			};
			const timer = this.clock.setTimeout(done, this.options.pollIntervalMs);
			this.sleepers.add(done);
		});
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
