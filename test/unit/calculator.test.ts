import type { ToolContext } from "../../tools/base";
import { ToolFailure } from "../../tools/base";
import { calculatorPool, calculatorTool } from "../../tools/calculator";
import { until } from "../support/eventually";

/** A context as the executor builds it: its signal aborts when `timeoutMs` elapses. */
function context(timeoutMs = 10_000): ToolContext {
	const controller = new AbortController();
	setTimeout(() => controller.abort(), timeoutMs).unref();
	return {
		tenant_id: "tenant-1",
		agent_id: null,
		execution_id: "execution-1",
		signal: controller.signal,
		timeout_ms: timeoutMs,
		call: async () => {
			throw new Error("the calculator never calls actions");
		},
		env: { outbound_allow_hosts: [] }
	};
}

function calculate(expression: unknown, timeoutMs?: number): Promise<Record<string, unknown>> {
	return calculatorTool.execute({ expression }, {}, context(timeoutMs));
}

/** Resolves the ToolFailure a calculation rejects with; fails the test if it resolves. */
async function failureOf(expression: unknown, timeoutMs?: number): Promise<ToolFailure> {
	const error: unknown = await calculate(expression, timeoutMs).then(
		result => {
			throw new Error(`expected a failure, got ${JSON.stringify(result)}`);
		},
		(err: unknown) => err
	);
	expect(error).toBeInstanceOf(ToolFailure);
	return error as ToolFailure;
}

/** Every thread has loaded mathjs: a thread still starting is not the behaviour under test. */
const allLoaded = () =>
	until("every calculator thread to load mathjs", () => calculatorPool.allLoaded(), 30_000);

/** A new pool whose threads have all loaded mathjs (tests before may have stopped one, and its replacement may still be starting). */
async function freshPool(): Promise<void> {
	await calculatorTool.close?.();
	await calculatorTool.start?.();
	await allLoaded();
}

// Worker start-up (ts-node compiling the worker, mathjs loading) is slow under jest; pay it once.
beforeAll(async () => {
	await calculatorTool.start?.();
	await allLoaded();
}, 60_000);

afterAll(async () => {
	await calculatorTool.close?.();
});

describe("calculator tool", () => {
	it("declares its type and schemas", () => {
		expect(calculatorTool.type).toBe("calculator");
		expect(calculatorTool.parameters).toMatchObject({
			required: ["expression"],
			properties: { expression: { type: "string", minLength: 1, maxLength: 1000 } },
			additionalProperties: false
		});
		expect(calculatorTool.configSchema).toEqual({
			type: "object",
			additionalProperties: false,
			properties: {}
		});
	});

	it.each<[string, number]>([
		["1 + 2 * 3", 7],
		["2^10", 1024],
		["(1 + 2) / 4", 0.75],
		["10 mod 3", 1],
		["-5 + 2", -3],
		["sqrt(16)", 4],
		["cbrt(27)", 3],
		["cos(0)", 1],
		["log(e)", 1],
		["5!", 120],
		["round(pi, 3)", 3.142],
		["max(3, 7, 5)", 7],
		["sum(1:100)", 5050],
		["mean(1:2:9)", 5],
		["std([2, 4, 4, 4, 5, 5, 7, 9])", 2.138089935299395],
		["mad([1, 2, 3, 4])", 1],
		["det([1, 2; 3, 4])", -2],
		["50%", 0.5],
		["2 > 1 ? 10 : 20", 10]
	])("evaluates %s to the number %p", async (expression, expected) => {
		const { value } = await calculate(expression);
		expect(typeof value).toBe("number");
		expect(value).toBeCloseTo(expected, 12);
	});

	it("evaluates trigonometry to JS numbers", async () => {
		expect((await calculate("sin(pi / 6)")).value).toBeCloseTo(0.5, 12);
		expect((await calculate("atan2(1, 1) * 4")).value).toBeCloseTo(Math.PI, 12);
	});

	it.each<[string, string]>([
		["5 km to m", "5000 m"],
		["2 inch to cm", "5.08 cm"],
		["10 degC to degF", "50 degF"],
		// `min` is the function here, as in mathjs itself; the unit is spelled `minute`.
		["90 minute to hour", "1.5 hour"],
		["3 ft + 12 inch to m", "1.2192 m"],
		["sqrt(-4)", "2i"],
		["[1, 2, 3] * 2", "[2, 4, 6]"],
		["1 < 2", "true"],
		// JSON has no Infinity or NaN, so overflow comes back as text rather than a number.
		["factorial(171)", "Infinity"],
		["0 / 0", "NaN"]
	])("evaluates %s to the text %p", async (expression, expected) => {
		expect(await calculate(expression)).toEqual({ value: expected });
	});

	it("keeps serving simple expressions while a slow one runs", async () => {
		let slowSettled = false;
		const slow = calculate("combinations(2e9, 1e9)").finally(() => {
			slowSettled = true;
		});
		const slowOutcome = slow.catch((err: unknown) => err);
		await until(
			"a worker to be evaluating the slow expression",
			() => calculatorPool.evaluating() === 1,
			10_000,
			10
		);
		const started = Date.now();
		expect(await calculate("1 + 1")).toEqual({ value: 2 });
		expect(Date.now() - started).toBeLessThan(1500);
		expect(slowSettled).toBe(false);
		expect(await slowOutcome).toMatchObject({
			type: "timeout",
			message: "calculation took longer than 2000 ms"
		});
	});

	it("stops when the execution's own timeout is shorter than the cap", async () => {
		const started = Date.now();
		expect((await failureOf("combinations(2e9, 1e9)", 500)).type).toBe("timeout");
		expect(Date.now() - started).toBeLessThan(1500);
		expect(await calculate("2 * 21")).toEqual({ value: 42 });
	});

	it("refuses a flood with 'calculator busy' and recovers afterwards", async () => {
		// More than the pool admits at once (64 per thread, at most 4 threads).
		const FLOOD = 300;
		const outcomes = await Promise.allSettled(
			Array.from({ length: FLOOD }, () => calculate("combinations(2e9, 1e9)", 2500))
		);
		const failures = outcomes.map(outcome => {
			expect(outcome.status).toBe("rejected");
			return (outcome as PromiseRejectedResult).reason as ToolFailure;
		});
		const busy = failures.filter(failure => failure.message === "calculator busy, try again later");
		expect(busy.length).toBeGreaterThan(0);
		expect(busy.every(failure => failure.type === "tool_error")).toBe(true);
		expect(failures.filter(failure => failure.type === "timeout")).toHaveLength(FLOOD - busy.length);
		expect(await calculate("1 + 1")).toEqual({ value: 2 });
	});

	it("answers each of many concurrent expressions with its own value", async () => {
		// More than a batch at once (within one tenant's 7/8 of the 64 admitted per worker thread):
		// every answer must reach its own caller.
		const count = 100;
		const results = await Promise.all(Array.from({ length: count }, (_, i) => calculate(`${i} * 2 + 1`)));
		expect(results).toEqual(Array.from({ length: count }, (_, i) => ({ value: i * 2 + 1 })));
	});

	it("fails only the expression that overruns; those sent with it complete without waiting for it", async () => {
		await freshPool();
		const started = Date.now();
		// Submitted in the same tick as the slow one, so they share its batch (or the next worker's).
		const slow = failureOf("combinations(2e9, 1e9)");
		const quick = Array.from({ length: 20 }, (_, i) =>
			calculate(`${i} + 0.5`).then(result => ({ result, ms: Date.now() - started }))
		);
		const answered = await Promise.all(quick);
		expect(answered.map(a => a.result)).toEqual(Array.from({ length: 20 }, (_, i) => ({ value: i + 0.5 })));
		expect(Math.max(...answered.map(a => a.ms))).toBeLessThan(1000);
		expect(await slow).toMatchObject({ type: "timeout", message: "calculation took longer than 2000 ms" });
	});

	it("runs the rest of a batch again when its worker dies of memory", async () => {
		await freshPool();
		const huge = failureOf("[1:5000]' * [1:5000]");
		const quick = Array.from({ length: 10 }, (_, i) => calculate(`${i} ^ 2`));
		expect(await Promise.all(quick)).toEqual(Array.from({ length: 10 }, (_, i) => ({ value: i ** 2 })));
		expect(["calculation needs too much memory", "calculation took longer than 2000 ms"]).toContain(
			(await huge).message
		);
	});

	it("starts no thread once closed, and a new pool when started again", async () => {
		await calculatorTool.close?.();
		expect((await failureOf("3 * 3")).message).toBe("calculator is not running");
		expect(calculatorPool.allLoaded()).toBe(false);
		await calculatorTool.start?.();
		expect(await calculate("3 * 3")).toEqual({ value: 9 });
	}, 30_000);

	it.each<[string, unknown, RegExp]>([
		["import", "import({x: 1})", /function import is not allowed/],
		["createUnit", 'createUnit("foo")', /function createUnit is not allowed/],
		["evaluate", 'evaluate("1+1")', /function evaluate is not allowed/],
		["parse", 'parse("1")', /function parse is not allowed/],
		["simplify", 'simplify("x")', /function simplify is not allowed/],
		["derivative", 'derivative("x^2", "x")', /function derivative is not allowed/],
		["compile", 'compile("1")', /function compile is not allowed/],
		["chain", "chain(1)", /function chain is not allowed/],
		["resolve", 'resolve("x")', /function resolve is not allowed/],
		["reviver as a value", "reviver", /symbol reviver is not allowed/],
		["reviver called", 'reviver("a", 1)', /function reviver is not allowed/],
		["map with a callback", "map([1, 2], cos)", /function map is not allowed/],
		["config", 'config({number: "BigNumber"})', /function config is not allowed/],
		["a function as a value", "cos", /symbol cos is not allowed/],
		["function definition", "f(x) = x", /function definitions/],
		["assignment", "a = 1", /assignments/],
		["property access", "x.constructor", /property and index access/],
		// Calling the result of a call is not even valid syntax.
		["constructor via a function", 'cos.constructor("return process")()', /Value expected/],
		["constructor via an array method", '[].map.constructor("return 1")()', /Value expected/],
		["constructor called", 'cos.constructor("return process")', /only named functions may be called/],
		["constructor of a string", '"".constructor', /property and index access/],
		["index access", "[1, 2][1]", /property and index access/],
		["object literal", "{a: 1}", /objects/],
		["several statements", "1; 2", /multiple statements/],
		["string literal", '"abc"', /only numbers and booleans/],
		["this", "this", /symbol this is not allowed/],
		["process", "process", /symbol process is not allowed/],
		["require", 'require("fs")', /function require is not allowed/],
		["global", "global", /symbol global is not allowed/],
		["globalThis", "globalThis", /symbol globalThis is not allowed/],
		["constructor symbol", "constructor", /symbol constructor is not allowed/],
		["__proto__", "__proto__", /symbol __proto__ is not allowed/],
		["huge range in a sum", "sum(1:5000000)", /ranges may hold at most 10000 elements/],
		["huge range", "1:1e9", /ranges may hold at most 10000 elements/],
		["range with a computed bound", "1:2^30", /finite number literals/],
		["ones", "ones(1e5, 1e5)", /function ones is not allowed/],
		["zeros", "zeros(10000, 10000)", /function zeros is not allowed/],
		["range()", "range(0, 1e9)", /function range is not allowed/],
		["5000 nested parentheses", `${"(".repeat(5000)}1${")".repeat(5000)}`, /longer than 1000 characters/],
		["400 nested parentheses", `${"(".repeat(400)}1${")".repeat(400)}`, /nested deeper than 32 levels/],
		["a long operator chain", `${"1+".repeat(450)}1`, /nested deeper than 200 levels/],
		["a 100 KB input", "1+".repeat(50_000) + "1", /longer than 1000 characters/],
		["blank", "   ", /non-empty string/],
		["not a string", 42, /non-empty string/],
		["a syntax error", "1 +", /Unexpected end of expression/]
	])("rejects %s as tool_error", async (_name, expression, message) => {
		const failure = await failureOf(expression);
		expect(failure.type).toBe("tool_error");
		expect(failure.message).toMatch(message);
	});

	it("stops a CPU-bound expression at the 2 s cap", async () => {
		const started = Date.now();
		const failure = await failureOf("combinations(2e9, 1e9)");
		expect(failure).toMatchObject({ type: "timeout", message: "calculation took longer than 2000 ms" });
		expect(Date.now() - started).toBeLessThan(4000);
	});

	it("stops an expression that allocates a huge matrix", async () => {
		// 5000 x 5000 = 25 million elements: the heap cap or the time cap ends it, whichever comes first.
		const failure = await failureOf("[1:5000]' * [1:5000]");
		expect(["calculation needs too much memory", "calculation took longer than 2000 ms"]).toContain(
			failure.message
		);
		expect(await calculate("1 + 1")).toEqual({ value: 2 });
	});
});
