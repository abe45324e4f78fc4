import path from "path";
import { CalculatorPool } from "../../tools/calculator.pool";

describe("the calculator's worker pool", () => {
	const pool = new CalculatorPool(path.join(__dirname, "../../tools/calculator.worker.ts"));

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
});
