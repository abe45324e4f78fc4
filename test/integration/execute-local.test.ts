import type {} from "moleculer";
import { THREADS } from "../../tools/calculator.pool";
import { calculatorPool } from "../../tools/calculator";
import { until } from "../support/eventually";
import { newTenant, SLOW, expectEnvelope, fieldsOf, useLocalNode } from "../support/local-execution";

/** Execution of local tools over HTTP (setup: test/support/local-execution.ts): the calculator and the datetime tool. */

describe("execution of local tools over HTTP", () => {
	const local = useLocalNode();
	const { execute, calculate } = local;
	let globalCalculatorId: string;
	let globalDatetimeId: string;
	beforeAll(() => ({ globalCalculatorId, globalDatetimeId } = local));

	describe("the calculator", () => {
		// First of the calculator tests: a timed-out evaluation costs its worker thread, and the
		// replacement takes a moment to start, which this test must not measure.
		it("answers a tenant's quick expression while another tenant's slow ones hold every regular worker", async () => {
			const hog = newTenant();
			const other = newTenant();
			// Four: at least as many as the pool's regular threads on any machine.
			const slow = Promise.all([1, 2, 3, 4].map(() => calculate(hog, SLOW)));
			const held = () => calculatorPool.evaluating(hog) === THREADS;
			await until("the slow expressions to hold every regular worker", held, 10000, 10);
			const started = Date.now();
			const quick = await calculate(other, "1+1");
			expect(quick.body).toMatchObject({ status: "completed", result: { value: 2 } });
			// Well within the 2 s the slow ones take to be stopped.
			expect(Date.now() - started).toBeLessThan(1500);
			const results = await slow;
			expect(results.map(res => res.body.status)).toEqual(["failed", "failed", "failed", "failed"]);
		});

		it("keeps serving other requests while a slow expression runs (the event loop stays free)", async () => {
			const tenant = newTenant();
			// The test before stopped every regular worker: their replacements must have loaded mathjs,
			// or the quick expression below would wait for one to start.
			await until("every calculator thread to load mathjs", () => calculatorPool.allLoaded(), 20000);
			const issued = Date.now();
			let slowDoneAt = 0;
			const slow = calculate(tenant, SLOW).then(res => {
				slowDoneAt = Date.now();
				return res;
			});
			// Measures how late timers fire on this process's event loop, which is also the server's.
			let lastTick = Date.now();
			let worstLag = 0;
			const ticker = setInterval(() => {
				const now = Date.now();
				worstLag = Math.max(worstLag, now - lastTick - 20);
				lastTick = now;
			}, 20);
			try {
				const running = () => calculatorPool.evaluating(tenant) === 1;
				await until("a worker to be evaluating the slow expression", running, 10000, 10);
				const fastIssued = Date.now();
				const fast = await calculate(tenant, "1+1");
				const fastDoneAt = Date.now();
				expect(fast.status).toBe(200);
				expect(fast.body.result).toEqual({ value: 2 });
				expect(slowDoneAt).toBe(0);
				const slowRes = await slow;
				expect(slowRes.body.status).toBe("failed");
				expect(slowRes.body.error.type).toBe("timeout");
				expect(fastDoneAt).toBeLessThan(slowDoneAt);
				expect(fastDoneAt - fastIssued).toBeLessThan(1000);
				expect(slowDoneAt - issued).toBeGreaterThanOrEqual(1500);
				expect(worstLag).toBeLessThan(500);
			} finally {
				clearInterval(ticker);
			}
		});

		it.each([
			["2+2", 4],
			["sqrt(16)", 4],
			["5 km to m", "5000 m"],
			["det([[1, 2], [3, 4]])", -2],
			["1/0", "Infinity"]
		])("evaluates %s to %p", async (expression, value) => {
			const res = await calculate(newTenant(), expression);
			expect(res.status).toBe(200);
			expectEnvelope(res.body, "completed");
			expect(res.body.result).toEqual({ value });
			expect(res.body).toMatchObject({ tool_id: globalCalculatorId, tool_name: "calculator" });
		});

		it("echoes a caller-supplied execution_id and generates one otherwise", async () => {
			const tenant = newTenant();
			const echoed = await calculate(tenant, "1+2", { execution_id: "exec-from-the-orchestrator-42" });
			expect(echoed.status).toBe(200);
			expectEnvelope(echoed.body, "completed");
			expect(echoed.body.execution_id).toBe("exec-from-the-orchestrator-42");
			const first = await calculate(tenant, "1+2");
			const second = await calculate(tenant, "1+2");
			expect(first.body.execution_id).not.toBe(second.body.execution_id);
		});

		const nested = (depth: number, open = "(", close = ")") => `${open.repeat(depth)}1${close.repeat(depth)}`;

		it.each([
			["import({x: 1})"],
			['createUnit("x")'],
			['evaluate("1")'],
			['parse("1")'],
			['simplify("x")'],
			['compile("1")'],
			['derivative("x^2", "x")'],
			["chain(1)"],
			['help("sin")'],
			["f(x) = x"],
			["a = 1"],
			["cos.constructor"],
			["[].constructor"],
			['cos["constructor"]'],
			["{a: 1}"],
			["config"],
			["typed"],
			['"a string literal"'],
			["2 + 2; 3 + 3"],
			["1 +"],
			["   "],
			["sum(1:5000000)"],
			["1:0.0000001:100"],
			["[1:5000, 1:5001]"],
			["1:10000"],
			["ones(1e5, 1e5)"],
			["zeros(10000, 10000)"],
			["range(1, 1e9)"],
			["400 nested parentheses", nested(400)],
			["300 nested brackets", nested(300, "[", "]")],
			[SLOW]
		])("answers 200 failed (tool_error or timeout) for %s", async (expression, input = expression) => {
			const res = await calculate(newTenant(), input);
			expect(res.status).toBe(200);
			expectEnvelope(res.body, "failed");
			expect(["tool_error", "timeout"]).toContain(res.body.error.type);
		});

		it.each([
			["a 100 KB expression", "9".repeat(100 * 1024)],
			["1000 nested parentheses (2001 characters)", nested(1000)],
			["an empty expression", ""]
		])("answers 422 naming parameters.expression for %s", async (_case, expression) => {
			const res = await calculate(newTenant(), expression);
			expect(res.status).toBe(422);
			expect(res.body).toMatchObject({ code: 422, type: "VALIDATION_ERROR" });
			expect(fieldsOf(res)).toContain("parameters.expression");
		});
	});

	describe("the datetime tool", () => {
		const datetime = (tenant: string, parameters: Record<string, unknown>) =>
			execute(tenant, { tool_name: "datetime", parameters });

		it("converts between zones following daylight saving time", async () => {
			const tenant = newTenant();
			const winter = await datetime(tenant, {
				operation: "convert",
				datetime: "2024-01-15T12:00:00Z",
				to_timezone: "Europe/Madrid"
			});
			expect(winter.status).toBe(200);
			expectEnvelope(winter.body, "completed");
			expect(winter.body).toMatchObject({ tool_id: globalDatetimeId, tool_name: "datetime" });
			expect(winter.body.result).toEqual({ iso: "2024-01-15T13:00:00.000+01:00", timezone: "Europe/Madrid" });
			const summer = await datetime(tenant, {
				operation: "convert",
				datetime: "2024-07-15T12:00:00Z",
				to_timezone: "Europe/Madrid"
			});
			expect(summer.body.result).toEqual({ iso: "2024-07-15T14:00:00.000+02:00", timezone: "Europe/Madrid" });
		});

		it("adds calendar days and clock hours differently across a DST change", async () => {
			const tenant = newTenant();
			const start = {
				operation: "add",
				datetime: "2024-03-09T12:00:00",
				timezone: "America/New_York",
				amount: 1
			};
			const day = await datetime(tenant, { ...start, unit: "days" });
			expect(day.status).toBe(200);
			expectEnvelope(day.body, "completed");
			expect(day.body.result).toEqual({ iso: "2024-03-10T12:00:00.000-04:00", timezone: "America/New_York" });
			const hours = await datetime(tenant, { ...start, amount: 24, unit: "hours" });
			expect(hours.body.result.iso).toBe("2024-03-10T13:00:00.000-04:00");
		});

		it("measures a DST day as 23 hours", async () => {
			const res = await datetime(newTenant(), {
				operation: "diff",
				from: "2024-03-09T12:00:00",
				to: "2024-03-10T12:00:00",
				timezone: "America/New_York",
				unit: "hours"
			});
			expect(res.status).toBe(200);
			expectEnvelope(res.body, "completed");
			expect(res.body.result).toEqual({ value: 23, unit: "hours", iso: "PT23H" });
		});

		it("formats with tokens and tells the current time in a zone", async () => {
			const tenant = newTenant();
			const formatted = await datetime(tenant, {
				operation: "format",
				datetime: "2024-03-10T15:04:05Z",
				format: "yyyy-MM-dd HH:mm"
			});
			expect(formatted.status).toBe(200);
			expectEnvelope(formatted.body, "completed");
			expect(formatted.body.result).toMatchObject({ formatted: "2024-03-10 15:04", timezone: "UTC" });
			expect(formatted.body.result.iso).toBe("2024-03-10T15:04:05.000Z");
			const now = await datetime(tenant, { operation: "now", timezone: "Asia/Tokyo" });
			expect(now.body.result.timezone).toBe("Asia/Tokyo");
			expect(now.body.result.iso).toMatch(/\+09:00$/);
			expect(Math.abs(Date.parse(now.body.result.iso) - Date.now())).toBeLessThan(60_000);
		});

		it.each([
			["an impossible date", { operation: "format", datetime: "2024-02-30" }],
			["an unknown zone", { operation: "now", timezone: "Mars/Base" }],
			[
				"an unknown target zone",
				{ operation: "convert", datetime: "2024-01-01T00:00:00Z", to_timezone: "Mars/Base" }
			],
			["a missing operand", { operation: "add", datetime: "2024-01-01T00:00:00Z", unit: "days" }]
		])("answers %s with 422 or a clean tool_error, never 5xx", async (_case, parameters) => {
			const res = await datetime(newTenant(), parameters);
			// Either is allowed: the schema may reject it, or the tool fails cleanly.
			expect([200, 422]).toContain(res.status);
			if (res.status === 422) expect(res.body).toMatchObject({ code: 422, type: "VALIDATION_ERROR" });
			else {
				expectEnvelope(res.body, "failed");
				expect(res.body.error.type).toBe("tool_error");
			}
		});
	});
});
