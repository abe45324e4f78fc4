import { MemoryOutbox } from "../../lib/outbox/memory-outbox";
import { MemoryTaskQueue } from "../../lib/tasks/memory-task-queue";
import { pendingTask } from "../support/tasks";

/** A queue holding `backlog` pending tasks of one tenant. */
async function backlogged(backlog: number) {
	const queue = new MemoryTaskQueue(new MemoryOutbox(10));
	for (let i = 0; i < backlog; i++) await queue.submit(pendingTask("deep"));
	return queue;
}

/** Wall time of `claims` claims, in ms. */
async function timeClaims(queue: MemoryTaskQueue, claims: number): Promise<number> {
	const started = process.hrtime.bigint();
	for (let i = 0; i < claims; i++) expect(await queue.claim(60_000, 1)).toHaveLength(1);
	return Number(process.hrtime.bigint() - started) / 1e6;
}

/** The memory backend under a deep backlog (the shared suite, test/support/suites, covers its behaviour). */
describe("MemoryTaskQueue with a deep backlog", () => {
	let deep: MemoryTaskQueue;

	beforeAll(async () => {
		deep = await backlogged(150_000);
	});

	it("reports the depth of a queue of 150,000 pending tasks", async () => {
		const [depth] = await deep.depths();
		expect(depth).toMatchObject({ tenant_id: "deep", pending: 150_000 });
		expect(depth.oldest_age_ms).toBeGreaterThanOrEqual(0);
	});

	it("claims from the front in constant time, however deep the queue", async () => {
		const shallow = await backlogged(2_000);
		await timeClaims(shallow, 500); // warms the code up
		const short = await timeClaims(shallow, 1_000);
		const long = await timeClaims(deep, 1_000);
		expect(long).toBeLessThan(short * 10 + 50);
	});

	it("still puts a higher priority first", async () => {
		const queue = await backlogged(3);
		const urgent = pendingTask("deep", { priority: 9 });
		await queue.submit(urgent);
		expect((await queue.claim(60_000, 1))[0].task.task_id).toBe(urgent.task_id);
	});
});
