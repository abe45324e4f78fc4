import { MemoryOutbox } from "../../lib/outbox/memory-outbox";
import { MemoryTaskQueue } from "../../lib/tasks/memory-task-queue";
import { TaskWorkers } from "../../lib/tasks/task-workers";
import type { Lease } from "../../lib/tasks/task-queue";
import { pendingTask } from "../support/tasks";

const OPTIONS = { concurrency: 2, leaseMs: 1000, reapIntervalMs: 50, maxDeliveries: 3, pollIntervalMs: 20 };

const submit = (queue: MemoryTaskQueue) => queue.submit(pendingTask("t"));

/** Workers that complete every task they get and record its id. */
function recordingWorkers(
	queue: MemoryTaskQueue,
	options: typeof OPTIONS,
	canClaim: () => boolean = () => true
) {
	const handled: string[] = [];
	const workers = new TaskWorkers(queue, options, {
		canClaim,
		handle: async (lease: Lease) => {
			handled.push(lease.task.task_id);
			await queue.finish(lease, { status: "completed", result: {} });
		},
		onReaped: async () => undefined,
		onError: () => undefined
	});
	return { workers, handled };
}

describe("TaskWorkers", () => {
	it("handles submitted tasks and stops taking work when the node stops", async () => {
		const queue = new MemoryTaskQueue(new MemoryOutbox(1000));
		let claiming = true;
		const { workers, handled } = recordingWorkers(queue, OPTIONS, () => claiming);
		workers.start();
		await submit(queue);
		workers.wake();
		await new Promise(resolve => setTimeout(resolve, 100));
		expect(handled).toHaveLength(1);
		claiming = false;
		await new Promise(resolve => setTimeout(resolve, 50));
		await submit(queue);
		workers.wake();
		await new Promise(resolve => setTimeout(resolve, 100));
		expect(handled).toHaveLength(1);
		await workers.stop();
	});

	it("wakes as many idle workers as asked: one task is claimed once, not by every worker", async () => {
		const queue = new MemoryTaskQueue(new MemoryOutbox(1000));
		const claim = jest.spyOn(queue, "claim");
		// Idle workers never poll during the test: only a wake-up makes them claim.
		const { workers, handled } = recordingWorkers(queue, {
			...OPTIONS,
			concurrency: 4,
			pollIntervalMs: 60_000
		});
		workers.start();
		await new Promise(resolve => setTimeout(resolve, 20));
		expect(claim).toHaveBeenCalledTimes(4);
		await submit(queue);
		workers.wake(1);
		await new Promise(resolve => setTimeout(resolve, 20));
		// The woken worker claims the task, runs it, finds nothing more and sleeps again.
		expect(handled).toHaveLength(1);
		expect(claim).toHaveBeenCalledTimes(6);
		workers.wake();
		await new Promise(resolve => setTimeout(resolve, 20));
		expect(claim).toHaveBeenCalledTimes(10);
		await workers.stop();
	});

	it("never starts after it was stopped (a late start must not leave loops running)", async () => {
		const queue = new MemoryTaskQueue(new MemoryOutbox(1000));
		const handle = jest.fn();
		const workers = new TaskWorkers(queue, OPTIONS, {
			canClaim: () => true,
			handle,
			onReaped: async () => undefined,
			onError: () => undefined
		});
		await workers.stop();
		workers.start();
		await submit(queue);
		workers.wake();
		await new Promise(resolve => setTimeout(resolve, 100));
		expect(handle).not.toHaveBeenCalled();
	});
});
