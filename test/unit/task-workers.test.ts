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
		expect(claim).toHaveBeenCalledTimes(OPTIONS.concurrency);
		await submit();
		await settle();
		expect(handled).toHaveLength(0);
		await clock.advance(OPTIONS.pollIntervalMs);
		expect(handled).toHaveLength(1);
		await workers.stop();
	});

	it("wakes as many idle workers as asked: one task is claimed once, not by every worker", async () => {
		// Idle workers never poll during the test: only a wake-up makes them claim.
		const { claim, workers, handled, submit } = setup({ ...OPTIONS, concurrency: 4, pollIntervalMs: 60_000 });
		workers.start();
		await settle();
		expect(claim).toHaveBeenCalledTimes(4);
		await submit();
		workers.wake(1);
		await settle();
		// The woken worker claims the task, runs it, finds nothing more and sleeps again.
		expect(handled).toHaveLength(1);
		expect(claim).toHaveBeenCalledTimes(6);
		workers.wake();
		await settle();
		expect(claim).toHaveBeenCalledTimes(10);
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
