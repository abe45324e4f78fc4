import os from "node:os";
import path from "node:path";
import { Piscina } from "piscina";
import { ToolFailure } from "./base";
import {
	batchViews,
	isWorkerLoaded,
	QUEUED,
	sharedBatchMemory,
	STOLEN,
	TAKEN,
	type BatchViews,
	type CalculatorBatch,
	type CalculatorOutcome
} from "./calculator.protocol";

/** At least two threads, so one slow expression never stalls the next; at most four, to bound memory. */
export const THREADS = Math.min(4, Math.max(2, os.availableParallelism() - 1));
/**
 * Expressions waiting or running; more are refused at once rather than piling up in memory. A waiting
 * one holds a short string, and its deadline bounds the wait.
 */
const MAX_ADMITTED = THREADS * 64;
/** One tenant's share of MAX_ADMITTED: a tenant filling the queue leaves room for others. */
const MAX_ADMITTED_PER_TENANT = (MAX_ADMITTED * 7) / 8;
/**
 * A thread beyond THREADS, taken only by a tenant with nothing running: one tenant's slow expressions
 * can hold every regular thread, never another tenant's quick ones.
 */
const SPARE_THREADS = 1;
const MAX_BATCH = 64;
/** A batch still running after this long gives back the expressions it has not started. */
const STEAL_AFTER_MS = 50;
/** Hand-offs of one expression to workers that died before evaluating anything; then it fails. */
const MAX_HANDOFFS = 3;
/** How often expressions waiting here are checked against their deadlines. */
const SWEEP_MS = 100;
/** A cold pool starts its workers (loading mathjs) before the first evaluation can begin. */
const START_UP_ALLOWANCE_MS = 15_000;
const MAX_ERROR_CHARS = 300;

interface Job {
	tenant: string;
	expression: string;
	/** Longest the evaluation itself may run. */
	limitMs: number;
	/**
	 * Epoch ms by which the answer is due (submission + limit, plus an allowance while a worker is
	 * starting): past it the job fails as `timeout`, wherever it is.
	 */
	deadline: number;
	handoffs: number;
	resolve(value: number | string): void;
	reject(failure: ToolFailure): void;
}

interface Batch extends BatchViews {
	jobs: Job[];
	abort: AbortController;
	timer?: NodeJS.Timeout;
	/** Set when this side stopped the batch: the running job overran, or the pool is closing. */
	stoppedFor?: "deadline" | "close";
}

/**
 * The calculator's worker threads. Evaluations leave the event loop in batches: piscina runs an
 * abortable task alone on its worker, and each hand-off (message, wake-up, reply) costs the main
 * thread more than the evaluation itself, so expressions that arrive while the workers are busy wait
 * here and leave together. Every expression keeps its own hard limit: its answer is due at submission
 * + limit, and its evaluation may not run longer than the limit. Workers claim each expression in
 * shared memory before evaluating it, so the main thread knows which one is running and terminates
 * exactly that worker when it overruns; the rest of its batch runs again elsewhere. A batch that is
 * slow gives back what it has not started, so a quick expression never waits long behind a slow one.
 */
export class CalculatorPool {
	private pool?: Piscina<CalculatorBatch, CalculatorOutcome[]>;
	private readonly waiting: Job[] = [];
	private readonly running = new Set<Batch>();
	private admitted = 0;
	private readonly admittedPerTenant = new Map<string, number>();
	private flushScheduled = false;
	private sweepTimer?: NodeJS.Timeout;
	/** Set when a worker answers, cleared when one dies: deadlines need no start-up allowance while set. */
	private warm = false;
	/** Threads (by id) that have loaded mathjs and not been stopped since. */
	private readonly loaded = new Set<number>();
	/**
	 * Executors using the pool (several share it when a test runs more than one node in a process): it
	 * runs while one does, and once the last has closed it no evaluation starts its threads again.
	 */
	private holders = 0;

	constructor(private readonly workerFile: string) {}

	/** Takes the pool into use: evaluations are refused while nobody holds it. */
	open(): void {
		this.holders++;
	}

	/** Evaluates `expression` for `tenant`, whose share of threads and queue is bounded. */
	evaluate(expression: string, limitMs: number, tenant: string): Promise<number | string> {
		if (this.holders === 0) return Promise.reject(notRunning());
		const own = this.admittedPerTenant.get(tenant) ?? 0;
		if (this.admitted >= MAX_ADMITTED || own >= MAX_ADMITTED_PER_TENANT)
			return Promise.reject(new ToolFailure("tool_error", "calculator busy, try again later"));
		this.admitted++;
		this.admittedPerTenant.set(tenant, own + 1);
		return new Promise((resolve, reject) => {
			const allowance = this.warm ? 0 : START_UP_ALLOWANCE_MS;
			this.waiting.push({
				tenant,
				expression,
				limitMs,
				deadline: Date.now() + limitMs + allowance,
				handoffs: 0,
				resolve,
				reject
			});
			this.scheduleFlush();
		});
	}

	/**
	 * Expressions of `tenant` (of anyone when left out) that a worker is evaluating right now: what a
	 * test waits for before it asserts what happens while they run.
	 */
	evaluating(tenant?: string): number {
		let count = 0;
		for (const { jobs, states } of this.running)
			jobs.forEach((job, i) => {
				if (Atomics.load(states, i) === TAKEN && (tenant === undefined || job.tenant === tenant)) count++;
			});
		return count;
	}

	/**
	 * Whether every thread has loaded mathjs, the replacements of stopped ones included: a batch given
	 * to the pool now waits for no thread to start.
	 */
	allLoaded(): boolean {
		return this.loaded.size === THREADS + SPARE_THREADS;
	}

	/**
	 * Lets go of the pool; when the last holder does, fails everything waiting or running and stops
	 * the threads. Opened again, the next evaluation starts a new pool.
	 */
	async close(): Promise<void> {
		this.holders = Math.max(0, this.holders - 1);
		if (this.holders > 0) return;
		const pool = this.pool;
		this.pool = undefined;
		this.warm = false;
		this.loaded.clear();
		clearTimeout(this.sweepTimer);
		this.sweepTimer = undefined;
		for (const job of this.waiting.splice(0)) this.fail(job, shuttingDown());
		for (const batch of this.running) {
			batch.stoppedFor = "close";
			batch.abort.abort();
		}
		await pool?.destroy();
	}

	private getPool(): Piscina<CalculatorBatch, CalculatorOutcome[]> {
		if (this.pool) return this.pool;
		// Under ts-jest the worker is .ts source, which a worker thread can only load through ts-node.
		const source = path.extname(this.workerFile) === ".ts";
		const pool = new Piscina<CalculatorBatch, CalculatorOutcome[]>({
			filename: this.workerFile,
			// The spare starts with the others: a tenant that needs it should not wait for mathjs to load.
			minThreads: THREADS + SPARE_THREADS,
			maxThreads: THREADS + SPARE_THREADS,
			idleTimeout: 30_000,
			// mathjs itself takes about 40 MB; a huge matrix kills only its own worker.
			resourceLimits: { maxOldGenerationSizeMb: 64, maxYoungGenerationSizeMb: 16 },
			execArgv: source ? ["-r", require.resolve("ts-node/register/transpile-only")] : undefined
		});
		// piscina replaces a worker that dies holding none of its tasks (out of memory just after its
		// batch was aborted) and reports the death as a pool 'error': unheard, that event ends the process.
		pool.on("error", () => {
			this.warm = false;
		});
		// A closed pool's threads no longer count.
		pool.on("message", (message: unknown) => {
			if (this.pool === pool && isWorkerLoaded(message)) this.loaded.add(message.calculatorWorkerLoaded);
		});
		pool.on("workerDestroy", (worker: { id: number }) => this.loaded.delete(worker.id));
		return (this.pool = pool);
	}

	/** After the current I/O phase, so that the requests read in it leave as one batch. */
	private scheduleFlush(): void {
		if (!this.flushScheduled && this.running.size < THREADS + SPARE_THREADS) {
			this.flushScheduled = true;
			setImmediate(() => {
				this.flushScheduled = false;
				this.flush();
			});
		}
		if (!this.sweepTimer && this.waiting.length > 0) {
			this.sweepTimer = setTimeout(() => this.sweep(), SWEEP_MS).unref();
		}
	}

	/**
	 * Splits what waits evenly over the free regular workers. When none is free, a tenant with nothing
	 * running takes the spare worker, so its expressions do not wait behind another tenant's.
	 */
	private flush(): void {
		this.dropExpired();
		for (let free = THREADS - this.running.size; free > 0 && this.waiting.length > 0; free--) {
			this.dispatch(this.waiting.splice(0, Math.min(MAX_BATCH, Math.ceil(this.waiting.length / free))));
		}
		if (this.waiting.length === 0 || this.running.size >= THREADS + SPARE_THREADS) return;
		const busy = new Set([...this.running].flatMap(batch => batch.jobs.map(job => job.tenant)));
		const newcomer = this.waiting.find(job => !busy.has(job.tenant))?.tenant;
		if (newcomer === undefined) return;
		const taken: Job[] = [];
		let kept = 0;
		for (const job of this.waiting) {
			if (job.tenant === newcomer && taken.length < MAX_BATCH) taken.push(job);
			else this.waiting[kept++] = job;
		}
		this.waiting.length = kept;
		this.dispatch(taken);
	}

	private sweep(): void {
		this.sweepTimer = undefined;
		this.dropExpired();
		if (this.waiting.length > 0) this.sweepTimer = setTimeout(() => this.sweep(), SWEEP_MS).unref();
	}

	private dropExpired(): void {
		const now = Date.now();
		let kept = 0;
		for (const job of this.waiting) {
			if (job.deadline > now) this.waiting[kept++] = job;
			else this.fail(job, overran(job));
		}
		this.waiting.length = kept;
	}

	private dispatch(jobs: Job[]): void {
		const shared = sharedBatchMemory(jobs.length);
		const { states, starts } = batchViews(shared, jobs.length);
		const batch: Batch = { jobs, states, starts, abort: new AbortController() };
		this.running.add(batch);
		batch.timer = setTimeout(() => this.watch(batch), STEAL_AFTER_MS);
		const task: CalculatorBatch = {
			expressions: jobs.map(job => job.expression),
			deadlines: jobs.map(job => job.deadline),
			shared
		};
		this.getPool()
			.run(task, { signal: batch.abort.signal })
			.then(
				outcomes => this.complete(batch, outcomes),
				(err: unknown) => this.abandon(batch, err)
			);
	}

	/**
	 * A slow batch: gives back the jobs its worker has not started, then stops the worker if the
	 * running job is still at it when its answer is due or its own limit has run out.
	 */
	private watch(batch: Batch): void {
		const { jobs, states, starts } = batch;
		const taken: Job[] = [];
		let running = -1;
		for (let i = 0; i < jobs.length; i++) {
			if (Atomics.compareExchange(states, i, QUEUED, STOLEN) === QUEUED) taken.push(jobs[i]);
			else if (Atomics.load(states, i) === TAKEN) running = i;
		}
		if (taken.length > 0) {
			// Older than anything that arrived since: they go first.
			this.waiting.unshift(...taken);
			this.scheduleFlush();
		}
		// Nothing running: the answer is on its way, or the worker has not started (its jobs are given back).
		if (running < 0) return;
		const job = jobs[running];
		const remaining = Math.min(job.deadline, starts[running] + job.limitMs) - Date.now();
		if (remaining > 0) {
			batch.timer = setTimeout(() => this.watch(batch), remaining);
			return;
		}
		batch.stoppedFor = "deadline";
		batch.abort.abort();
	}

	private complete(batch: Batch, outcomes: CalculatorOutcome[]): void {
		this.finished(batch);
		this.warm = true;
		batch.jobs.forEach((job, i) => {
			const outcome = outcomes[i];
			if (outcome === null) return; // taken back: it is waiting or runs elsewhere
			if ("value" in outcome) {
				this.release(job);
				job.resolve(outcome.value);
			} else if ("error" in outcome) {
				this.fail(job, new ToolFailure("tool_error", outcome.error.slice(0, MAX_ERROR_CHARS)));
			} else {
				this.fail(job, overran(job));
			}
		});
		this.flush();
	}

	/** The worker was stopped or died: the job it was running fails, the others run again. */
	private abandon(batch: Batch, err: unknown): void {
		this.finished(batch);
		// Its replacement starts cold: what arrives until a worker answers again gets the allowance.
		this.warm = false;
		const states = Array.from(batch.states, state => state);
		// With no expression to blame (the worker died before starting one), every hand-off counts.
		const blamed = states.includes(TAKEN);
		const given: Job[] = [];
		batch.jobs.forEach((job, i) => {
			if (states[i] === STOLEN) return;
			if (batch.stoppedFor === "close") this.fail(job, shuttingDown());
			else if (states[i] === TAKEN)
				this.fail(job, batch.stoppedFor === "deadline" ? overran(job) : crashed(err));
			else if (!blamed && ++job.handoffs > MAX_HANDOFFS)
				this.fail(job, new ToolFailure("tool_error", "calculator workers keep failing"));
			else given.push(job);
		});
		this.waiting.unshift(...given);
		this.flush();
	}

	private finished(batch: Batch): void {
		clearTimeout(batch.timer);
		this.running.delete(batch);
	}

	private fail(job: Job, failure: ToolFailure): void {
		this.release(job);
		job.reject(failure);
	}

	private release(job: Job): void {
		this.admitted--;
		const left = this.admittedPerTenant.get(job.tenant)! - 1;
		if (left > 0) this.admittedPerTenant.set(job.tenant, left);
		else this.admittedPerTenant.delete(job.tenant);
	}
}

function overran(job: Job): ToolFailure {
	return new ToolFailure("timeout", `calculation took longer than ${job.limitMs} ms`);
}

function shuttingDown(): ToolFailure {
	return new ToolFailure("tool_error", "calculator is shutting down");
}

function notRunning(): ToolFailure {
	return new ToolFailure("tool_error", "calculator is not running");
}

/** A worker that died on its own: read as plain fields, since errors cloned from a worker may belong to another realm. */
function crashed(err: unknown): ToolFailure {
	const error: Partial<NodeJS.ErrnoException> = typeof err === "object" && err !== null ? err : {};
	if (error.code === "ERR_WORKER_OUT_OF_MEMORY")
		return new ToolFailure("tool_error", "calculation needs too much memory");
	return new ToolFailure("tool_error", String(error.message ?? err).slice(0, MAX_ERROR_CHARS));
}
