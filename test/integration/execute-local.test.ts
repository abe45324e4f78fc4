import type { Context } from "moleculer";
import { eventually } from "../support/eventually";
import { http, startNode, type HttpResult, type TestNode } from "../support/node";
import { calculatorTool } from "../support/definitions";

let tenantCounter = 0;
const newTenant = () => `exec-${process.pid}-${++tenantCounter}`;

const ENVELOPE_KEYS = ["execution_id", "execution_time_ms", "status", "tool_id", "tool_name"];
/** The slowest expression we know of: mathjs loops a billion times, so only a time limit ends it. */
const SLOW = "combinations(2e9, 1e9)";

/** Checks the documented execution result: exactly its keys, `result` or `error` by status. */
function expectEnvelope(body: any, status: "completed" | "failed") {
	const outcome = status === "completed" ? "result" : "error";
	expect(Object.keys(body).sort()).toEqual([...ENVELOPE_KEYS, outcome].sort());
	expect(body.status).toBe(status);
	expect(typeof body.execution_id).toBe("string");
	expect(body.execution_id.length).toBeGreaterThan(0);
	expect(typeof body.tool_id).toBe("string");
	expect(typeof body.tool_name).toBe("string");
	expect(typeof body.execution_time_ms).toBe("number");
	expect(body.execution_time_ms).toBeGreaterThanOrEqual(0);
	if (status === "failed") {
		expect(Object.keys(body.error).sort()).toEqual(["message", "type"]);
		expect(typeof body.error.message).toBe("string");
		expect(body.error.message.length).toBeGreaterThan(0);
	}
}

interface CallerOptions {
	agent?: string;
	token?: string;
}

/** Fields named by a 422 body's `data` problems. */
const fieldsOf = (res: HttpResult): string[] =>
	(res.body.data as { field: string }[]).map(problem => problem.field);

describe("execution of local tools over HTTP", () => {
	let node: TestNode;
	let globalCalculatorId: string;
	let globalDatetimeId: string;

	const execute = (tenant: string | undefined, body: unknown, options: CallerOptions = {}) =>
		http(node.url, "POST", "/api/v1/internal/execute", {
			tenant,
			body,
			token: options.token,
			headers: options.agent ? { "x-agent-id": options.agent } : undefined
		});
	const calculate = (tenant: string, expression: string, extra: Record<string, unknown> = {}) =>
		execute(tenant, { tool_name: "calculator", parameters: { expression }, ...extra });
	const register = async (tenant: string, definition: Record<string, unknown>) => {
		const res = await http(node.url, "POST", "/api/v1/tools", { tenant, body: definition });
		expect(res.status).toBe(201);
		return res.body as { id: string; name: string; tenant_id: string };
	};
	const stats = (tenant: string, id: string) =>
		http(node.url, "GET", `/api/v1/tools/${id}/stats`, { tenant });
	const keyFor = async (tenant: string, scopes: string[], agentId?: string) => {
		const res = await http(node.url, "POST", "/api/v1/keys", {
			tenant,
			body: { tenant_id: tenant, scopes, ...(agentId ? { agent_id: agentId } : {}) }
		});
		expect(res.status).toBe(201);
		return res.body.api_key as string;
	};

	beforeAll(async () => {
		node = await startNode();
		const tools = await http(node.url, "GET", "/api/v1/tools", { tenant: newTenant() });
		const items = tools.body.items as { id: string; name: string; tenant_id: string }[];
		const global = (name: string) => items.find(t => t.name === name && t.tenant_id === "*")!.id;
		globalCalculatorId = global("calculator");
		globalDatetimeId = global("datetime");
		// Starts the calculator's worker threads, so timings below measure evaluations, not thread start-up.
		// On a busy machine a first call may outlast its timeout while the threads start: wait until they answer.
		await eventually(async () => {
			const warm = await Promise.all([1, 2, 3].map(() => calculate("warm-up", "1+1")));
			expect(warm.map(res => res.body.result?.value)).toEqual([2, 2, 2]);
		}, 60000);
	}, 90000);

	afterAll(() => node.stop());

	describe("the calculator", () => {
		// First of the calculator tests: a timed-out evaluation costs its worker thread, and the
		// replacement takes a moment to start, which this test must not measure.
		it("answers a tenant's quick expression while another tenant's slow ones hold every regular worker", async () => {
			const hog = newTenant();
			const other = newTenant();
			// Four: at least as many as the pool's regular threads on any machine.
			const slow = Promise.all([1, 2, 3, 4].map(() => calculate(hog, SLOW)));
			await new Promise(resolve => setTimeout(resolve, 300));
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
			// The test before stopped every regular worker: wait until the pool answers quickly again.
			await eventually(async () => {
				const started = Date.now();
				expect((await calculate(tenant, "1+1")).body.result).toEqual({ value: 2 });
				expect(Date.now() - started).toBeLessThan(200);
			}, 20000);
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
				await new Promise(resolve => setTimeout(resolve, 300));
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

	describe("resolving the tool", () => {
		it("runs a tool by tool_id and by tool_name", async () => {
			const tenant = newTenant();
			const tool = await register(tenant, calculatorTool("my_calc"));
			const byId = await execute(tenant, { tool_id: tool.id, parameters: { expression: "3*3" } });
			expect(byId.status).toBe(200);
			expectEnvelope(byId.body, "completed");
			expect(byId.body).toMatchObject({ tool_id: tool.id, tool_name: "my_calc", result: { value: 9 } });
			const byName = await execute(tenant, { tool_name: "my_calc", parameters: { expression: "3*4" } });
			expect(byName.body).toMatchObject({ tool_id: tool.id, tool_name: "my_calc", result: { value: 12 } });
			const globalById = await execute(tenant, {
				tool_id: globalCalculatorId,
				parameters: { expression: "1" }
			});
			expect(globalById.body).toMatchObject({ tool_id: globalCalculatorId, status: "completed" });
		});

		it("lets a tenant tool shadow a global one of the same name for that tenant only", async () => {
			const owner = newTenant();
			const other = newTenant();
			const mine = await register(owner, calculatorTool("calculator", { description: "Mine" }));
			expect(mine.id).not.toBe(globalCalculatorId);
			const shadowed = await calculate(owner, "2+3");
			expect(shadowed.status).toBe(200);
			expect(shadowed.body).toMatchObject({
				tool_id: mine.id,
				tool_name: "calculator",
				result: { value: 5 }
			});
			const unaffected = await calculate(other, "2+3");
			expect(unaffected.body).toMatchObject({ tool_id: globalCalculatorId, result: { value: 5 } });
		});

		it.each([
			["an unknown tool_id", { tool_id: "01a211ad-0000-7000-8000-000000000000" }],
			["an unknown tool_name", { tool_name: "no_such_tool" }]
		])("answers 404 NOT_FOUND for %s", async (_case, target) => {
			const res = await execute(newTenant(), { ...target, parameters: {} });
			expect(res.status).toBe(404);
			expect(res.body).toMatchObject({ code: 404, type: "NOT_FOUND" });
		});

		const one = { tool_name: "calculator", parameters: { expression: "1" } };

		it.each([
			["neither tool_id nor tool_name", { parameters: { expression: "1" } }, "tool_id"],
			["an unknown request field", { ...one, priority: 5 }, "priority"],
			["parameters as a string", { tool_name: "calculator", parameters: "1+1" }, "parameters"],
			["parameters as an array", { tool_name: "calculator", parameters: ["1+1"] }, "parameters"],
			["parameters as a number", { tool_name: "calculator", parameters: 42 }, "parameters"],
			["timeout_ms of 0", { ...one, timeout_ms: 0 }, "timeout_ms"],
			["a fractional timeout_ms", { ...one, timeout_ms: 1.5 }, "timeout_ms"],
			["timeout_ms as a string", { ...one, timeout_ms: "100" }, "timeout_ms"],
			["an empty execution_id", { ...one, execution_id: "" }, "execution_id"]
		])("answers 422 VALIDATION_ERROR for %s", async (_case, body, mentioned) => {
			const res = await execute(newTenant(), body);
			expect(res.status).toBe(422);
			expect(res.body).toMatchObject({ code: 422, type: "VALIDATION_ERROR" });
			expect(Array.isArray(res.body.data)).toBe(true);
			expect(JSON.stringify(res.body.data)).toContain(`"${mentioned}"`);
		});

		it.each([
			["a missing required parameter", {}, "parameters.expression"],
			["a parameter of the wrong type", { expression: 5 }, "parameters.expression"],
			["an extra parameter", { expression: "1+1", precision: 3 }, "parameters.precision"]
		])("answers 422 for %s, naming it, and does not run the tool", async (_case, parameters, field) => {
			const tenant = newTenant();
			const before = await stats(tenant, globalCalculatorId);
			expect(before.status).toBe(200);
			expect(before.body.calls).toBe(0);
			const res = await execute(tenant, { tool_id: globalCalculatorId, parameters });
			expect(res.status).toBe(422);
			expect(res.body).toMatchObject({ code: 422, type: "VALIDATION_ERROR" });
			expect(fieldsOf(res)).toContain(field);
			expect((await stats(tenant, globalCalculatorId)).body.calls).toBe(0);
			// The same tenant's stats do count a call that ran.
			expect((await calculate(tenant, "1+1")).body.status).toBe("completed");
			expect((await stats(tenant, globalCalculatorId)).body.calls).toBe(1);
		});
	});

	describe("agent permissions", () => {
		const restricted = calculatorTool("for_agent_a", { permissions: { agents: ["agent-a"] } });
		const run = (id: string) => ({ tool_id: id, parameters: { expression: "6*7" } });

		it("runs a restricted tool for a permitted agent and reports it as missing to any other", async () => {
			const tenant = newTenant();
			const tool = await register(tenant, restricted);
			const allowed = await execute(tenant, run(tool.id), { agent: "agent-a" });
			expect(allowed.status).toBe(200);
			expectEnvelope(allowed.body, "completed");
			expect(allowed.body.result).toEqual({ value: 42 });

			// What a tenant that cannot see the tool at all gets for the same id.
			const missing = await execute(newTenant(), run(tool.id), { agent: "agent-a" });
			expect(missing.status).toBe(404);
			expect(missing.body).toMatchObject({ code: 404, type: "NOT_FOUND" });
			for (const agent of ["agent-b", undefined]) {
				const refused = await execute(tenant, run(tool.id), { agent });
				expect(refused.status).toBe(404);
				expect(refused.body).toEqual(missing.body);
			}
			const byName = await execute(
				tenant,
				{ tool_name: "for_agent_a", parameters: { expression: "1" } },
				{
					agent: "agent-b"
				}
			);
			const missingByName = await execute(tenant, { tool_name: "no_such_tool", parameters: {} });
			expect(byName.status).toBe(404);
			expect({ ...byName.body, data: undefined }).toEqual({ ...missingByName.body, data: undefined });
		});

		it("applies the agent an API key is bound to", async () => {
			const tenant = newTenant();
			const tool = await register(tenant, restricted);
			const scopes = ["tools:execute", "tools:read", "tools:write"];
			const agentB = await keyFor(tenant, scopes, "agent-b");
			const refused = await execute(undefined, run(tool.id), { token: agentB });
			expect(refused.status).toBe(404);
			expect(refused.body).toMatchObject({ code: 404, type: "NOT_FOUND" });
			const agentA = await keyFor(tenant, scopes, "agent-a");
			const allowed = await execute(undefined, run(tool.id), { token: agentA });
			expect(allowed.status).toBe(200);
			expect(allowed.body.result).toEqual({ value: 42 });
		});

		it("answers 403 to a key without the tools:execute scope", async () => {
			const tenant = newTenant();
			const reader = await keyFor(tenant, ["tools:read", "tools:write"]);
			const res = await execute(
				undefined,
				{ tool_name: "calculator", parameters: { expression: "1" } },
				{
					token: reader
				}
			);
			expect(res.status).toBe(403);
			expect(res.body).toMatchObject({ code: 403, type: "FORBIDDEN" });
		});

		it("answers 404 for another tenant's tool, by id and by name", async () => {
			const owner = newTenant();
			const tool = await register(owner, calculatorTool("owners_calc"));
			const intruder = newTenant();
			const byId = await execute(intruder, { tool_id: tool.id, parameters: { expression: "1" } });
			expect(byId.status).toBe(404);
			expect(byId.body).toMatchObject({ code: 404, type: "NOT_FOUND" });
			const byName = await execute(intruder, { tool_name: "owners_calc", parameters: { expression: "1" } });
			expect(byName.status).toBe(404);
			expect((await stats(owner, tool.id)).body.calls).toBe(0);
		});
	});

	describe("timeouts", () => {
		it("applies a request timeout_ms shorter than the tool's", async () => {
			const started = Date.now();
			const res = await calculate(newTenant(), SLOW, { timeout_ms: 300 });
			const elapsed = Date.now() - started;
			expect(res.status).toBe(200);
			expectEnvelope(res.body, "failed");
			expect(res.body.error.type).toBe("timeout");
			expect(res.body.execution_time_ms).toBeGreaterThanOrEqual(290);
			expect(elapsed).toBeLessThan(1500);
		});

		it("never extends beyond the tool's own timeout_ms", async () => {
			const tenant = newTenant();
			const tool = await register(tenant, calculatorTool("quick_calc", { timeout_ms: 200 }));
			const started = Date.now();
			const res = await execute(tenant, {
				tool_id: tool.id,
				parameters: { expression: SLOW },
				timeout_ms: 5000
			});
			const elapsed = Date.now() - started;
			expect(res.status).toBe(200);
			expectEnvelope(res.body, "failed");
			expect(res.body.error.type).toBe("timeout");
			expect(res.body.execution_time_ms).toBeGreaterThanOrEqual(190);
			expect(res.body.execution_time_ms).toBeLessThan(1000);
			expect(elapsed).toBeLessThan(1500);
		});
	});

	describe("usage stats", () => {
		it("counts completed and failed executions by failure type, with latencies", async () => {
			const tenant = newTenant();
			const tool = await register(tenant, calculatorTool("counted"));
			const run = (expression: string, timeout_ms?: number) =>
				execute(tenant, { tool_id: tool.id, parameters: { expression }, timeout_ms });
			const outcomes = [];
			for (const expression of ["1+1", "2*3", "sqrt(9)", "x", "cos.constructor", SLOW]) {
				const res = await run(expression, expression === SLOW ? 100 : undefined);
				outcomes.push(res.body.error?.type ?? res.body.status);
			}
			expect(outcomes).toEqual([
				"completed",
				"completed",
				"completed",
				"tool_error",
				"tool_error",
				"timeout"
			]);
			const res = await stats(tenant, tool.id);
			expect(res.status).toBe(200);
			expect(res.body).toMatchObject({
				tool_id: tool.id,
				tenant_id: tenant,
				calls: 6,
				completed: 3,
				failed: 3,
				failures: { tool_error: 2, timeout: 1, upstream_error: 0 }
			});
			const latency = res.body.latency_ms;
			expect(Object.keys(latency).sort()).toEqual(["avg", "max", "p50", "p95", "p99"]);
			for (const value of Object.values(latency)) {
				expect(typeof value).toBe("number");
				expect(value).toBeGreaterThanOrEqual(0);
			}
			expect(latency.max).toBeGreaterThanOrEqual(95);
			expect(latency.p99).toBeLessThanOrEqual(latency.max);
		});

		it("answers 404 to another tenant asking for a tenant tool's stats", async () => {
			const owner = newTenant();
			const tool = await register(owner, calculatorTool("private_calc"));
			await execute(owner, { tool_id: tool.id, parameters: { expression: "1" } });
			const res = await stats(newTenant(), tool.id);
			expect(res.status).toBe(404);
			expect(res.body).toMatchObject({ code: 404, type: "NOT_FOUND" });
			expect((await stats(owner, "01a211ad-0000-7000-8000-000000000000")).status).toBe(404);
		});

		it("keeps a global tool's stats per tenant", async () => {
			const a = newTenant();
			const b = newTenant();
			for (const expression of ["1", "2", "x"]) await calculate(a, expression);
			await calculate(b, "3");
			const statsA = await stats(a, globalCalculatorId);
			expect(statsA.body).toMatchObject({ tenant_id: a, calls: 3, completed: 2, failed: 1 });
			const statsB = await stats(b, globalCalculatorId);
			expect(statsB.body).toMatchObject({ tenant_id: b, calls: 1, completed: 1, failed: 0 });
		});
	});

	describe("disabled tools", () => {
		/** Polls a tool until `check` passes or two seconds have gone by. */
		async function waitForTool(tenant: string, name: string, check: (tool: any) => boolean) {
			const deadline = Date.now() + 2000;
			for (;;) {
				const list = await http(node.url, "GET", "/api/v1/tools?type=moleculer_action", { tenant });
				const tool = list.body.items.find((t: { name: string }) => t.name === name);
				if (tool && check(tool)) return tool;
				if (Date.now() > deadline) throw new Error(`tool ${name} did not reach the expected state`);
				await new Promise(resolve => setTimeout(resolve, 50));
			}
		}

		it("refuses to run a tool whose action no node offers any more (status disabled)", async () => {
			// The one public way to get a disabled tool: an action that declared `tool` goes away.
			const tenant = newTenant();
			const name = `echo_${process.pid}`;
			const service = node.broker.createService({
				name: `echoer${process.pid}`,
				actions: {
					echo: {
						tool: { name, description: "Echoes its text", parameters: { type: "object", properties: {} } },
						handler(ctx: Context<Record<string, unknown>>) {
							return { echoed: ctx.params.text ?? null };
						}
					}
				}
			} as any);
			await node.broker.waitForServices(`echoer${process.pid}`);
			const active = await waitForTool(tenant, name, tool => tool.status === "active");
			const ran = await execute(tenant, { tool_id: active.id, parameters: { text: "hi" } });
			expect(ran.status).toBe(200);
			expect(ran.body.result).toEqual({ echoed: "hi" });

			await node.broker.destroyService(service);
			await waitForTool(tenant, name, tool => tool.status === "disabled");
			const refused = await execute(tenant, { tool_id: active.id, parameters: { text: "hi" } });
			expect(refused.status).toBe(409);
			expect(refused.body).toMatchObject({ code: 409, type: "CONFLICT", data: { status: "disabled" } });
			const byName = await execute(tenant, { tool_name: name, parameters: {} });
			expect(byName.status).toBe(409);
		});
	});

	describe("the executor.execute action", () => {
		it("answers with the same envelope as REST, identity from ctx.meta", async () => {
			const tenant = newTenant();
			const tool = await register(tenant, {
				name: "meta_calc",
				description: "Evaluates an arithmetic expression",
				type: "calculator",
				permissions: { agents: ["agent-a"] }
			});
			const call = (params: Record<string, unknown>, agentId?: string) =>
				node.broker.call<any, any>("executor.execute", params, {
					meta: { tenant_id: tenant, agent_id: agentId }
				});
			const expression = (text: string) => ({ tool_id: tool.id, parameters: { expression: text } });
			const done = await call({ ...expression("2+2"), execution_id: "via-action" }, "agent-a");
			expectEnvelope(done, "completed");
			expect(done).toMatchObject({
				execution_id: "via-action",
				tool_id: tool.id,
				tool_name: "meta_calc",
				result: { value: 4 }
			});
			const failed = await call({ tool_name: "calculator", parameters: { expression: "import({})" } });
			expectEnvelope(failed, "failed");
			expect(failed).toMatchObject({ tool_id: globalCalculatorId, error: { type: "tool_error" } });
			const rest = await calculate(tenant, "import({})");
			expect(Object.keys(rest.body).sort()).toEqual(Object.keys(failed).sort());

			await expect(call(expression("1"), "agent-b")).rejects.toMatchObject({
				code: 404,
				type: "NOT_FOUND"
			});
			await expect(call({ tool_id: tool.id, parameters: {} }, "agent-a")).rejects.toMatchObject({
				code: 422,
				type: "VALIDATION_ERROR"
			});
			await expect(call({ ...expression("1"), extra: true }, "agent-a")).rejects.toMatchObject({
				code: 422
			});
			const anonymous = node.broker.call("executor.execute", expression("1"), { meta: {} });
			await expect(anonymous).rejects.toMatchObject({ code: 400, type: "TENANT_REQUIRED" });
		});
	});
});
