import { MemoryOutbox } from "../../lib/outbox/memory-outbox";
import { MemoryTaskQueue } from "../../lib/tasks/memory-task-queue";
import { TaskWorkers } from "../../lib/tasks/task-workers";
import type { Lease } from "../../lib/tasks/task-queue";
import { ManualClock, settle } from "../support/manual-clock";
import { pendingTask } from "../support/tasks";

const OPTIONS = { concurrency: 2, leaseMs: 1000, reapIntervalMs: 50, maxDeliveries: 3, pollIntervalMs: 20 };

/*
 * The memory queue answers without I/O, so once `settle()` (or `clock.advance`) returns, every
 * worker has done all it can until the clock moves again: counts are exact, with no sleeps.
 */
function setup(
	options = OPTIONS,
	canClaim: () => boolean = () => true,
	handle?: (lease: Lease) => Promise<void>
) {
	const clock = new ManualClock();
	const queue = new MemoryTaskQueue(new MemoryOutbox(1000), undefined, clock);
	const claim = jest.spyOn(queue, "claim");
	const handled: string[] = [];
	const complete = async (lease: Lease) => {
		handled.push(lease.task.task_id);
		await queue.finish(lease, { status: "completed", result: {} });
	};
	const workers = new TaskWorkers(
		queue,
		options,
		{ canClaim, handle: handle ?? complete, onReaped: async () => undefined, onError: () => undefined },
		clock
	);
	const submit = () => queue.submit(pendingTask("t"));
	return { clock, queue, claim, workers, handled, submit };
}

describe("TaskWorkers", () => {
	it("handles submitted tasks and stops taking work when the node stops", async () => {
		let claiming = true;
		const { clock, claim, workers, handled, submit } = setup(OPTIONS, () => claiming);
		workers.start();
		await submit();
		workers.wake();
		await settle();
		expect(handled).toHaveLength(1);
		claiming = false;
		await clock.advance(OPTIONS.pollIntervalMs);
		const claims = claim.mock.calls.length;
		await submit();
		workers.wake();
		await clock.advance(10 * OPTIONS.pollIntervalMs);
		expect(handled).toHaveLength(1);
		expect(claim).toHaveBeenCalledTimes(claims);
		await workers.stop();
	});

	it("polls when idle, without a wake-up", async () => {
		const { clock, claim, workers, handled, submit } = setup();
		workers.start();
		await settle();
		// One claim for the node, not one per slot.
		expect(claim).toHaveBeenCalledTimes(1);
		await submit();
		await settle();
		expect(handled).toHaveLength(0);
		await clock.advance(OPTIONS.pollIntervalMs);
		expect(handled).toHaveLength(1);
		await workers.stop();
	});

	it("claims for its free slots at once and, when the queues are empty, once per wake-up", async () => {
		// Never polls during the test: only a wake-up makes it claim.
		const { claim, workers, handled, submit } = setup({ ...OPTIONS, concurrency: 4, pollIntervalMs: 60_000 });
		workers.start();
		await settle();
		expect(claim.mock.calls).toEqual([[OPTIONS.leaseMs, 4]]);
		for (let i = 0; i < 3; i++) await submit();
		workers.wake();
		await settle();
		// The three tasks in one claim (fewer than asked: the queues are empty), then asleep again.
		expect(handled).toHaveLength(3);
		expect(claim.mock.calls.slice(1)).toEqual([[OPTIONS.leaseMs, 4]]);
		workers.wake();
		workers.wake();
		await settle();
		expect(claim).toHaveBeenCalledTimes(3);
		await workers.stop();
	});

	it("runs at most `concurrency` tasks at once and claims only for the slots that free up", async () => {
		const releases: (() => void)[] = [];
		let running = 0;
		let most = 0;
		const { queue, claim, workers, handled, submit } = setup(
			{ ...OPTIONS, concurrency: 3, pollIntervalMs: 60_000 },
			undefined,
			async lease => {
				most = Math.max(most, ++running);
				await new Promise<void>(resolve => releases.push(resolve));
				running--;
				handled.push(lease.task.task_id);
				await queue.finish(lease, { status: "completed", result: {} });
			}
		);
		for (let i = 0; i < 7; i++) await submit();
		workers.start();
		await settle();
		expect(running).toBe(3);
		expect(claim.mock.calls).toEqual([[OPTIONS.leaseMs, 3]]);
		releases.splice(0, 2).forEach(release => release());
		await settle();
		expect(running).toBe(3);
		// Each claim asks for the slots free when it starts, never more.
		expect(claim.mock.calls.length).toBeGreaterThan(1);
		for (const [, asked] of claim.mock.calls.slice(1)) expect(asked).toBeLessThanOrEqual(2);
		while (handled.length < 7) {
			releases.splice(0).forEach(release => release());
			await settle();
		}
		expect(most).toBe(3);
		expect(claim.mock.calls.reduce((sum, [, asked]) => sum + asked, 0)).toBeGreaterThanOrEqual(7);
		await workers.stop();
	});

	it("claims again at once when work was signalled while it was claiming", async () => {
		// Never polls during the test: a lost wake-up would leave the task waiting.
		const { claim, workers, handled, submit } = setup({ ...OPTIONS, pollIntervalMs: 60_000 });
		let answer = (_leases: Lease[]) => undefined as void;
		claim.mockImplementationOnce(() => new Promise<Lease[]>(resolve => (answer = resolve)));
		workers.start();
		await settle();
		// The first claim is in flight (it saw empty queues) when a task arrives and is signalled.
		await submit();
		workers.wake();
		answer([]);
		await settle();
		expect(handled).toHaveLength(1);
		expect(claim).toHaveBeenCalledTimes(2);
		await workers.stop();
	});

	it("keeps claiming after a claim fails, reporting the failure", async () => {
		const errors: string[] = [];
		const clock = new ManualClock();
		const queue = new MemoryTaskQueue(new MemoryOutbox(1000), undefined, clock);
		const handled: string[] = [];
		const workers = new TaskWorkers(
			queue,
			OPTIONS,
			{
				canClaim: () => true,
				handle: async lease => {
					handled.push(lease.task.task_id);
					await queue.finish(lease, { status: "completed", result: {} });
				},
				onReaped: async () => undefined,
				onError: message => errors.push(message)
			},
			clock
		);
		jest.spyOn(queue, "claim").mockRejectedValueOnce(new Error("Redis is down"));
		await queue.submit(pendingTask("t"));
		workers.start();
		await settle();
		expect(errors).toEqual(["claiming tasks failed"]);
		expect(handled).toHaveLength(0);
		await clock.advance(OPTIONS.pollIntervalMs);
		expect(handled).toHaveLength(1);
		await workers.stop();
	});

	it("renews the lease of a task it is running, so the reaper leaves it alone", async () => {
		let release = () => undefined as void;
		const running = new Promise<void>(resolve => (release = resolve));
		const { clock, queue, workers, submit } = setup(OPTIONS, undefined, () => running);
		const { task } = await submit();
		workers.start();
		await settle();
		expect((await queue.get(task.task_id))?.status).toBe("processing");
		await clock.advance(5 * OPTIONS.leaseMs);
		expect(await queue.get(task.task_id)).toMatchObject({ status: "processing", attempts: 1 });
		expect((await queue.reap(OPTIONS.maxDeliveries)).redelivered).toBe(0);
		release();
		await workers.stop();
	});

	it("never starts after it was stopped (a late start must not leave loops running)", async () => {
		const { clock, claim, workers, submit } = setup();
		await workers.stop();
		workers.start();
		await submit();
		workers.wake();
		await clock.advance(10 * OPTIONS.pollIntervalMs);
		expect(claim).not.toHaveBeenCalled();
		expect(clock.pending).toBe(0);
	});
});
