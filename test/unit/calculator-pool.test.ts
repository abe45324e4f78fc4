import path from "path";
import { CalculatorPool } from "../../tools/calculator.pool";

describe("the calculator's worker pool", () => {
	const pool = new CalculatorPool(path.join(__dirname, "../../tools/calculator.worker.ts"));

	beforeAll(() => pool.open());
	afterAll(() => pool.close());

	it("outlives a worker that dies between tasks, and keeps evaluating", async () => {
		expect(await pool.evaluate("1 + 1", 10_000, "t")).toBe(2);
		// What piscina emits when a worker holding none of its tasks dies, e.g. out of memory.
		const piscina = (pool as unknown as { pool: NodeJS.EventEmitter }).pool;
		expect(() =>
			piscina.emit("error", new Error("Worker terminated due to reaching memory limit"))
		).not.toThrow();
		expect(await pool.evaluate("2 * 3", 10_000, "t")).toBe(6);
	}, 60_000);

	it("is shared: it keeps running until the last holder closes it", async () => {
		pool.open();
		await pool.close();
		expect(await pool.evaluate("2 + 2", 10_000, "t")).toBe(4);
	}, 60_000);
});
